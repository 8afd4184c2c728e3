//! The skills extension's methods (`io.modelcontextprotocol/skills`): `skills/list`, `skills/get` and
//! `resources/directory/read`, served from what [`SkillDef`](crate::server::SkillDef)s published.

use crate::protocol::capabilities::extension_ids;
use crate::protocol::skills::{
    GetSkillParams, GetSkillResult, ListSkillsParams, ListSkillsResult, ReadDirectoryParams, ReadDirectoryResult,
};
use crate::protocol::{ErrorObject, Request, decode_params};
use crate::server::request::{Incoming, Outcome, cache, declared, finish, paginate, scope};
use crate::server::skills::children;

/// `skills/list`, `skills/get` and `resources/directory/read`.
pub(super) fn dispatch(req: Incoming<'_>) -> Outcome {
    let Incoming { server, session, method, params, headers } = req;
    match method {
        ListSkillsParams::METHOD => {
            let params: ListSkillsParams = decode_params(params)?;
            let scope = scope(server, session, params.meta(), false, headers)?;
            declared(server.capabilities.has_extension(extension_ids::SKILLS), method)?;
            let catalog = server.catalog();
            let (page, next_cursor) = paginate(&catalog.skills, params.cursor.as_deref(), server.page_size)?;
            let mut result = ListSkillsResult { skills: page.to_vec(), next_cursor, ..Default::default() };
            (result.ttl_ms, result.cache_scope) = cache(server, &scope);
            finish(server, &scope, result)
        }
        GetSkillParams::METHOD => {
            let params: GetSkillParams = decode_params(params)?;
            let scope = scope(server, session, params.meta(), false, headers)?;
            declared(server.capabilities.has_extension(extension_ids::SKILLS), method)?;
            let catalog = server.catalog();
            let skill = catalog
                .skills
                .iter()
                .find(|s| s.uri == params.uri)
                .ok_or_else(|| ErrorObject::invalid_params(format!("unknown skill: {}", params.uri)))?;
            let (ttl_ms, cache_scope) = cache(server, &scope);
            finish(
                server,
                &scope,
                GetSkillResult { skill: skill.clone(), ttl_ms, cache_scope, result_type: None, meta: None },
            )
        }
        ReadDirectoryParams::METHOD => {
            let params: ReadDirectoryParams = decode_params(params)?;
            let scope = scope(server, session, params.meta(), false, headers)?;
            declared(server.capabilities.has_extension(extension_ids::SKILLS), method)?;
            let catalog = server.catalog();
            let uri = params.uri.trim_end_matches('/');
            let entries = catalog
                .directories
                .get(uri)
                .ok_or_else(|| ErrorObject::invalid_params(format!("not a directory: {}", params.uri)))?;
            let listed = children(&catalog.resources, entries);
            let (page, next_cursor) = paginate(&listed, params.cursor.as_deref(), server.page_size)?;
            finish(server, &scope, ReadDirectoryResult { resources: page.to_vec(), next_cursor, ..Default::default() })
        }
        other => Err(ErrorObject::method_not_found(other)),
    }
}
