//! Client side: sequential `tools/call` from Keel's HTTP client and from rmcp's, against the floor server, so the
//! server costs (almost) nothing and the client's own overhead shows.

use std::time::{Duration, Instant};

pub async fn keel(url: &str, warmup: Duration, measure: Duration) -> anyhow::Result<f64> {
    use keel_mcp::client::Client;
    let client = Client::builder(keel_mcp::protocol::Implementation::new("keel-bench", "0")).connect_http(url).await?;
    let args = serde_json::json!({"a": 1, "b": 2});
    timed(warmup, measure, || async {
        let r = client.call_tool("add", args.clone()).await?;
        let sum = r.structured_content.as_ref().and_then(|s| s["sum"].as_f64());
        anyhow::ensure!(sum == Some(3.0), "keel client got {r:?}");
        Ok(())
    })
    .await
}

pub async fn rmcp(url: &str, warmup: Duration, measure: Duration) -> anyhow::Result<f64> {
    use rmcp::ServiceExt;
    use rmcp::model::CallToolRequestParams;
    use rmcp::transport::StreamableHttpClientTransport;
    let client = ().serve(StreamableHttpClientTransport::from_uri(url)).await?;
    let args = serde_json::json!({"a": 1, "b": 2}).as_object().cloned().expect("object");
    let rate = timed(warmup, measure, || async {
        let r = client.call_tool(CallToolRequestParams::new("add").with_arguments(args.clone())).await?;
        let sum = r.structured_content.as_ref().and_then(|s| s["sum"].as_f64());
        anyhow::ensure!(sum == Some(3.0), "rmcp client got {r:?}");
        Ok(())
    })
    .await;
    let _ = client.cancel().await;
    rate
}

async fn timed<F, Fut>(warmup: Duration, measure: Duration, mut call: F) -> anyhow::Result<f64>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let count_from = Instant::now() + warmup;
    let until = count_from + measure;
    let mut counted = 0u64;
    loop {
        let now = Instant::now();
        if now >= until {
            break;
        }
        call().await?;
        if now >= count_from {
            counted += 1;
        }
    }
    Ok(counted as f64 / measure.as_secs_f64())
}
