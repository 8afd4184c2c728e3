//! Input-required results (2026-07-28 MRTR, SEP-2322): when `tools/call`, `prompts/get` or
//! `resources/read` answers `resultType: "input_required"`, the client fulfils the `inputRequests` with
//! its handlers and sends the request again — under a new JSON-RPC id, with `inputResponses` and the
//! server's `requestState` echoed unchanged — until the result is complete or the round limit is hit.
//! A result without `resultType` is complete.

use std::collections::BTreeMap;

use super::Client;
use crate::engine::RequestOptions;
use crate::error::Error;
use crate::protocol::mrtr::peek_result_type;
use crate::protocol::prompts::GetPromptParams;
use crate::protocol::resources::ReadResourceParams;
use crate::protocol::tools::CallToolParams;
use crate::protocol::{InputRequiredResult, InputResponses, Request, ResultType};

/// A request the server may answer with an input-required result.
pub trait InputRetry: Request + Clone {
    /// Sets the answers and the state for the next round.
    fn set_input(&mut self, responses: Option<InputResponses>, state: Option<String>);
}

macro_rules! input_retry {
    ($($ty:ty),+) => {$(
        impl InputRetry for $ty {
            fn set_input(&mut self, responses: Option<InputResponses>, state: Option<String>) {
                self.input_responses = responses;
                self.request_state = state;
            }
        }
    )+};
}

input_retry!(CallToolParams, GetPromptParams, ReadResourceParams);

impl Client {
    /// Sends a request that may need input rounds, answering them with the registered handlers.
    pub async fn call<R: InputRetry>(&self, mut params: R, options: RequestOptions) -> Result<R::Result, Error> {
        self.stamp_log_level(&mut params);
        for _ in 0..self.max_input_rounds {
            // A fresh copy per round, so the engine allocates a new id and progress token each time.
            let mut round = params.clone();
            let raw = self.send(&mut round, options.clone()).await?;
            match peek_result_type(raw.get())? {
                ResultType::Complete => return Ok(serde_json::from_str(raw.get())?),
                ResultType::InputRequired => {
                    let asked: InputRequiredResult = serde_json::from_str(raw.get())?;
                    let responses = self.fulfil(asked.input_requests.unwrap_or_default()).await?;
                    params.set_input(Some(responses), asked.request_state);
                }
                other => {
                    return Err(Error::Protocol(format!("unsupported resultType {other:?} for {}", R::METHOD)));
                }
            }
        }
        Err(Error::Protocol(format!("{} still needed input after {} rounds", R::METHOD, self.max_input_rounds)))
    }

    async fn fulfil(&self, requests: crate::protocol::InputRequests) -> Result<InputResponses, Error> {
        let mut answers = BTreeMap::new();
        for (key, request) in requests {
            let method = request.method().to_owned();
            let answer = self.handlers.fulfil(request).await.map_err(|e| {
                Error::Protocol(format!("cannot answer the server's {method} input request: {}", e.message))
            })?;
            answers.insert(key, answer.to_value());
        }
        Ok(answers.into_iter().collect())
    }
}
