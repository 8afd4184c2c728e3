//! Reading a request body with a size cap and a progress timeout, so a peer that trickles (or stops
//! sending) its body holds a connection for a bounded time and never a request slot.
//!
//! The timeout lives here, in the service, rather than only in the listener: a service mounted in axum
//! reads its body through whatever server the application runs, which may have no body timeout at all.

use std::future::Future as _;
use std::task::Poll;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

/// Why a body could not be read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// Larger than the configured cap (413).
    TooLarge,
    /// No progress for the configured time (408).
    Stalled,
    /// The connection failed or the peer sent a malformed body (400).
    Broken,
}

/// Reads the whole body: at most `max_bytes`, and each frame within `progress_timeout` of the previous one.
pub(crate) async fn read<B>(body: B, max_bytes: usize, progress_timeout: Duration) -> Result<Bytes, BodyError>
where
    B: http_body::Body<Data = Bytes>,
{
    let mut body = std::pin::pin!(body);
    // Most bodies arrive as one frame: keep it as is, and copy only when a second one comes.
    let mut first: Option<Bytes> = None;
    let mut joined: Option<BytesMut> = None;
    let mut len = 0usize;
    // Armed only when a frame is not ready at once (a body usually is, whole, in the first poll): the
    // clock read and timer registration are then spared on the hot path.
    let mut stall: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    while !body.is_end_stream() {
        let frame = std::future::poll_fn(|cx| {
            if let Poll::Ready(frame) = body.as_mut().poll_frame(cx) {
                return Poll::Ready(Ok(frame));
            }
            let timer = stall.get_or_insert_with(|| Box::pin(tokio::time::sleep(progress_timeout)));
            timer.as_mut().poll(cx).map(|()| Err(BodyError::Stalled))
        })
        .await?;
        // Progress: the next frame gets a full `progress_timeout` again.
        stall = None;
        let frame = match frame {
            None => break,
            Some(Err(_)) => return Err(BodyError::Broken),
            Some(Ok(frame)) => frame,
        };
        let Ok(data) = frame.into_data() else { continue }; // trailers
        len = len.saturating_add(data.len());
        if len > max_bytes {
            return Err(BodyError::TooLarge);
        }
        match (&mut first, &mut joined) {
            (None, _) => first = Some(data),
            (Some(head), None) => {
                let mut buffer = BytesMut::with_capacity(len);
                buffer.extend_from_slice(head);
                buffer.extend_from_slice(&data);
                joined = Some(buffer);
            }
            (Some(_), Some(buffer)) => buffer.extend_from_slice(&data),
        }
    }
    Ok(match (joined, first) {
        (Some(buffer), _) => buffer.freeze(),
        (None, Some(head)) => head,
        (None, None) => Bytes::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{Full, StreamBody};

    fn chunks(parts: &[&'static [u8]]) -> impl http_body::Body<Data = Bytes, Error = std::convert::Infallible> {
        let frames: Vec<Result<http_body::Frame<Bytes>, std::convert::Infallible>> =
            parts.iter().map(|p| Ok(http_body::Frame::data(Bytes::from_static(p)))).collect();
        StreamBody::new(futures_util::stream::iter(frames))
    }

    #[tokio::test]
    async fn joins_frames_and_caps_the_size() {
        let long = Duration::from_secs(5);
        assert_eq!(read(Full::new(Bytes::from_static(b"{}")), 8, long).await.unwrap(), "{}");
        assert_eq!(read(chunks(&[b"ab", b"cd", b"e"]), 8, long).await.unwrap(), "abcde");
        assert_eq!(read(chunks(&[]), 8, long).await.unwrap(), "");
        assert_eq!(read(chunks(&[b"abcd", b"efgh", b"i"]), 8, long).await, Err(BodyError::TooLarge));
    }

    #[tokio::test]
    async fn a_stalled_body_times_out() {
        let stalled = StreamBody::new(futures_util::stream::pending::<
            Result<http_body::Frame<Bytes>, std::convert::Infallible>,
        >());
        assert_eq!(read(stalled, 8, Duration::from_millis(20)).await, Err(BodyError::Stalled));
    }
}
