//! Reading one decoded frame from a socket (logins and quiet statements; the data path uses
//! the scanner instead).

use bytes::BytesMut;
use pgcorral::protocol::ProtocolError;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::codec::Decoder;

/// Reads from `stream` into `buf` until `decoder` yields an item. End of stream is an
/// `UnexpectedEof` I/O error.
pub async fn read_frame<D, E>(
    stream: &mut (impl AsyncRead + Unpin),
    buf: &mut BytesMut,
    decoder: &mut D,
    chunk: usize,
) -> Result<D::Item, E>
where
    D: Decoder<Error = ProtocolError>,
    E: From<ProtocolError> + From<std::io::Error>,
{
    loop {
        if let Some(item) = decoder.decode(buf)? {
            return Ok(item);
        }
        buf.reserve(chunk);
        if stream.read_buf(buf).await? == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
    }
}
