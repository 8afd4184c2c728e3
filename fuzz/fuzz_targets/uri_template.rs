//! RFC 6570 URI templates as resource templates use them: parse a template, then match a URI against it. A
//! match must bind only the template's variables. Input: `template \n uri`.
#![no_main]

use keel_mcp::server::uri_template::UriTemplate;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (template, uri) = text.split_once('\n').unwrap_or((text, ""));
    let Ok(template) = UriTemplate::parse(template) else { return };
    if let Some(vars) = template.matches(uri) {
        let names: Vec<&str> = template.variables().collect();
        for name in vars.keys() {
            assert!(names.contains(&name.as_str()), "bound {name:?}, which the template does not name");
        }
    }
});
