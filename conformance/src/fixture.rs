//! The server fixture the conformance suite expects (names and behaviour from the suite's scenarios),
//! written with Keel's public API as a user would write it.

use keel_mcp::protocol::Implementation;
use keel_mcp::protocol::content::{ContentBlock, ResourceContents};
use keel_mcp::protocol::logging::LoggingLevel;
use keel_mcp::protocol::tools::CallToolResult;
use keel_mcp::server::{NoArgs, RequestContext, Server};

/// A 1×1 PNG.
pub const PNG_BASE64: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";
/// A few samples of silence as a WAV file.
pub const WAV_BASE64: &str = "UklGRjQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YRAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// Builds the conformance server.
pub fn server() -> Server {
    Server::builder(Implementation::new("keel-conformance-server", env!("CARGO_PKG_VERSION")))
        .tool("test_simple_text", "Returns simple text", |_: NoArgs| async {
            "This is a simple text response for testing."
        })
        .tool("test_image_content", "Returns an image", |_: NoArgs| async {
            ContentBlock::image(PNG_BASE64, "image/png")
        })
        .tool("test_audio_content", "Returns audio", |_: NoArgs| async { ContentBlock::audio(WAV_BASE64, "audio/wav") })
        .tool("test_embedded_resource", "Returns an embedded resource", |_: NoArgs| async {
            ContentBlock::resource(ResourceContents::text(
                "test://embedded-resource",
                Some("text/plain"),
                "This is an embedded resource content.",
            ))
        })
        .tool("test_multiple_content_types", "Returns text, an image and a resource", |_: NoArgs| async {
            vec![
                ContentBlock::text("Multiple content types test:"),
                ContentBlock::image(PNG_BASE64, "image/png"),
                ContentBlock::resource(ResourceContents::text(
                    "test://mixed-content-resource",
                    Some("application/json"),
                    r#"{"test":"data","value":123}"#,
                )),
            ]
        })
        .tool(
            "test_tool_with_logging",
            "Logs three messages while it runs",
            |ctx: RequestContext, _: NoArgs| async move {
                for message in ["Tool execution started", "Tool processing data", "Tool execution completed"] {
                    ctx.log(LoggingLevel::Info, Some("conformance"), message).await;
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                "Logging test completed"
            },
        )
        .tool("test_tool_with_progress", "Reports progress", |ctx: RequestContext, _: NoArgs| async move {
            for step in [0.0, 50.0, 100.0] {
                ctx.progress(step, Some(100.0), Some("working")).await;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            "Progress test completed"
        })
        .tool("test_error_handling", "Always fails", |_: NoArgs| async {
            CallToolResult::error("This tool intentionally returns an error for testing")
        })
        .build()
}
