//! Builders for the messages the pooler originates itself, appended to a buffer.

use bytes::{BufMut, BytesMut};

use super::startup::{CANCEL_REQUEST_CODE, PROTOCOL_3_0, SSL_REQUEST_CODE};

/// Appends a tagged message whose body is written by `body`, patching the length afterwards.
fn tagged(buf: &mut BytesMut, tag: u8, body: impl FnOnce(&mut BytesMut)) {
    buf.put_u8(tag);
    let at = buf.len();
    buf.put_i32(0);
    body(buf);
    let len = (buf.len() - at) as i32;
    buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

fn put_cstr(buf: &mut BytesMut, s: &str) {
    // A NUL inside would end the string early on the other side; drop it instead (the
    // common string has none and is copied whole).
    if s.as_bytes().contains(&0) {
        buf.extend(s.bytes().filter(|&b| b != 0));
    } else {
        buf.extend_from_slice(s.as_bytes());
    }
    buf.put_u8(0);
}

// ---- backend messages (pooler to client) ----

pub fn auth_ok(buf: &mut BytesMut) {
    tagged(buf, b'R', |b| b.put_i32(0));
}

pub fn auth_cleartext(buf: &mut BytesMut) {
    tagged(buf, b'R', |b| b.put_i32(3));
}

pub fn auth_md5(buf: &mut BytesMut, salt: [u8; 4]) {
    tagged(buf, b'R', |b| {
        b.put_i32(5);
        b.put_slice(&salt);
    });
}

pub fn auth_sasl(buf: &mut BytesMut, mechanism: &str) {
    tagged(buf, b'R', |b| {
        b.put_i32(10);
        put_cstr(b, mechanism);
        b.put_u8(0);
    });
}

pub fn auth_sasl_continue(buf: &mut BytesMut, data: &[u8]) {
    tagged(buf, b'R', |b| {
        b.put_i32(11);
        b.put_slice(data);
    });
}

pub fn auth_sasl_final(buf: &mut BytesMut, data: &[u8]) {
    tagged(buf, b'R', |b| {
        b.put_i32(12);
        b.put_slice(data);
    });
}

pub fn parameter_status(buf: &mut BytesMut, name: &str, value: &str) {
    tagged(buf, b'S', |b| {
        put_cstr(b, name);
        put_cstr(b, value);
    });
}

pub fn backend_key_data(buf: &mut BytesMut, pid: i32, secret: i32) {
    tagged(buf, b'K', |b| {
        b.put_i32(pid);
        b.put_i32(secret);
    });
}

pub fn parse_complete(buf: &mut BytesMut) {
    tagged(buf, b'1', |_| {});
}

pub fn ready_for_query(buf: &mut BytesMut, status: u8) {
    tagged(buf, b'Z', |b| b.put_u8(status));
}

/// ErrorResponse with severity, SQLSTATE and message.
pub fn error_response(buf: &mut BytesMut, severity: &str, code: &str, message: &str) {
    notice_or_error(buf, b'E', severity, code, message);
}

pub fn notice_response(buf: &mut BytesMut, severity: &str, code: &str, message: &str) {
    notice_or_error(buf, b'N', severity, code, message);
}

fn notice_or_error(buf: &mut BytesMut, tag: u8, severity: &str, code: &str, message: &str) {
    tagged(buf, tag, |b| {
        b.put_u8(b'S');
        put_cstr(b, severity);
        b.put_u8(b'V');
        put_cstr(b, severity);
        b.put_u8(b'C');
        put_cstr(b, code);
        b.put_u8(b'M');
        put_cstr(b, message);
        b.put_u8(0);
    });
}

pub fn empty_query_response(buf: &mut BytesMut) {
    tagged(buf, b'I', |_| {});
}

pub fn command_complete(buf: &mut BytesMut, tag: &str) {
    tagged(buf, b'C', |b| put_cstr(b, tag));
}

/// RowDescription for text columns.
pub fn row_description(buf: &mut BytesMut, columns: &[&str]) {
    tagged(buf, b'T', |b| {
        b.put_i16(columns.len() as i16);
        for c in columns {
            put_cstr(b, c);
            b.put_i32(0); // table oid
            b.put_i16(0); // column number
            b.put_i32(25); // text
            b.put_i16(-1);
            b.put_i32(-1);
            b.put_i16(0); // text format
        }
    });
}

pub fn data_row(buf: &mut BytesMut, values: &[Option<&str>]) {
    tagged(buf, b'D', |b| {
        b.put_i16(values.len() as i16);
        for v in values {
            match v {
                Some(v) => {
                    b.put_i32(v.len() as i32);
                    b.put_slice(v.as_bytes());
                }
                None => b.put_i32(-1),
            }
        }
    });
}

pub fn copy_data(buf: &mut BytesMut, data: &[u8]) {
    tagged(buf, b'd', |b| b.put_slice(data));
}

// ---- frontend messages (pooler to server) ----

pub fn startup(buf: &mut BytesMut, params: &[(&str, &str)]) {
    let at = buf.len();
    buf.put_i32(0);
    buf.put_i32(PROTOCOL_3_0);
    for (k, v) in params {
        put_cstr(buf, k);
        put_cstr(buf, v);
    }
    buf.put_u8(0);
    let len = (buf.len() - at) as i32;
    buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

pub fn ssl_request(buf: &mut BytesMut) {
    buf.put_i32(8);
    buf.put_i32(SSL_REQUEST_CODE);
}

pub fn cancel_request(buf: &mut BytesMut, pid: i32, secret: i32) {
    buf.put_i32(16);
    buf.put_i32(CANCEL_REQUEST_CODE);
    buf.put_i32(pid);
    buf.put_i32(secret);
}

pub fn password(buf: &mut BytesMut, password: &str) {
    tagged(buf, b'p', |b| put_cstr(b, password));
}

pub fn sasl_initial_response(buf: &mut BytesMut, mechanism: &str, data: &[u8]) {
    tagged(buf, b'p', |b| {
        put_cstr(b, mechanism);
        b.put_i32(data.len() as i32);
        b.put_slice(data);
    });
}

pub fn sasl_response(buf: &mut BytesMut, data: &[u8]) {
    tagged(buf, b'p', |b| b.put_slice(data));
}

pub fn query(buf: &mut BytesMut, sql: &str) {
    tagged(buf, b'Q', |b| put_cstr(b, sql));
}

/// Parse of the unnamed statement, parameter types left to the server.
pub fn parse_unnamed(buf: &mut BytesMut, sql: &str) {
    tagged(buf, b'P', |b| {
        b.put_u8(0);
        put_cstr(b, sql);
        b.put_i16(0);
    });
}

/// Bind of the unnamed portal to the unnamed statement with text parameters (`None`: NULL)
/// and text results. Parameters are length-prefixed, so any byte reaches the server as sent.
pub fn bind_unnamed(buf: &mut BytesMut, params: &[Option<&str>]) {
    tagged(buf, b'B', |b| {
        b.put_u8(0);
        b.put_u8(0);
        b.put_i16(0);
        b.put_i16(params.len() as i16);
        for p in params {
            match p {
                Some(v) => {
                    b.put_i32(v.len() as i32);
                    b.put_slice(v.as_bytes());
                }
                None => b.put_i32(-1),
            }
        }
        b.put_i16(0);
    });
}

/// Execute of the unnamed portal, all rows.
pub fn execute_unnamed(buf: &mut BytesMut) {
    tagged(buf, b'E', |b| {
        b.put_u8(0);
        b.put_i32(0);
    });
}

pub fn sync(buf: &mut BytesMut) {
    tagged(buf, b'S', |_| {});
}

pub fn copy_fail(buf: &mut BytesMut, reason: &str) {
    tagged(buf, b'f', |b| put_cstr(b, reason));
}

pub fn terminate(buf: &mut BytesMut) {
    tagged(buf, b'X', |_| {});
}

/// Reads a SASLInitialResponse body: mechanism name and client-first data.
pub fn parse_sasl_initial_response(body: &[u8]) -> Option<(&str, &[u8])> {
    let end = body.iter().position(|&b| b == 0)?;
    let mech = std::str::from_utf8(&body[..end]).ok()?;
    let rest = body.get(end + 1..)?;
    let len = i32::from_be_bytes(rest.get(..4)?.try_into().ok()?);
    let data = rest.get(4..)?;
    if len < 0 || data.len() != len as usize {
        return None;
    }
    Some((mech, data))
}

/// Reads a PasswordMessage body: the NUL-terminated password.
pub fn parse_password(body: &[u8]) -> Option<&str> {
    let (last, text) = body.split_last()?;
    (*last == 0).then_some(())?;
    std::str::from_utf8(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_patched() {
        let mut b = BytesMut::new();
        query(&mut b, "SELECT 1");
        assert_eq!(&b[..], b"Q\0\0\0\x0dSELECT 1\0");
        let mut b = BytesMut::new();
        sync(&mut b);
        assert_eq!(&b[..], b"S\0\0\0\x04");
        let mut b = BytesMut::new();
        startup(&mut b, &[("user", "u")]);
        assert_eq!(&b[..], b"\0\0\0\x10\0\x03\0\0user\0u\0\0");
    }

    #[test]
    fn extended_query_with_a_bound_parameter() {
        let mut b = BytesMut::new();
        parse_unnamed(&mut b, "SELECT $1");
        assert_eq!(&b[..], b"P\0\0\0\x11\0SELECT $1\0\0\0");
        let mut b = BytesMut::new();
        bind_unnamed(&mut b, &[Some("o'brien"), None]);
        assert_eq!(
            &b[..],
            b"B\0\0\0\x1b\0\0\0\0\0\x02\0\0\0\x07o'brien\xff\xff\xff\xff\0\0"
        );
        let mut b = BytesMut::new();
        execute_unnamed(&mut b);
        assert_eq!(&b[..], b"E\0\0\0\x09\0\0\0\0\0");
    }

    #[test]
    fn nul_bytes_cannot_cut_a_string() {
        let mut b = BytesMut::new();
        command_complete(&mut b, "SE\0T");
        assert_eq!(&b[5..], b"SET\0");
    }

    #[test]
    fn parses_sasl_initial_response_and_password() {
        let mut b = BytesMut::new();
        sasl_initial_response(&mut b, "SCRAM-SHA-256", b"n,,n=,r=abc");
        assert_eq!(
            parse_sasl_initial_response(&b[5..]),
            Some(("SCRAM-SHA-256", &b"n,,n=,r=abc"[..]))
        );
        assert_eq!(parse_sasl_initial_response(b"SCRAM\0\0\0\0\x09x"), None);
        let mut b = BytesMut::new();
        password(&mut b, "secret");
        assert_eq!(parse_password(&b[5..]), Some("secret"));
        assert_eq!(parse_password(b"no-nul"), None);
    }
}
