//! Reading the few backend messages the pooler must understand.

use super::ProtocolError;

/// Transaction status from ReadyForQuery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxStatus {
    Idle,
    InTransaction,
    Failed,
}

impl TxStatus {
    pub fn from_byte(b: u8) -> Result<Self, ProtocolError> {
        match b {
            b'I' => Ok(TxStatus::Idle),
            b'T' => Ok(TxStatus::InTransaction),
            b'E' => Ok(TxStatus::Failed),
            _ => Err(ProtocolError::malformed("ReadyForQuery status")),
        }
    }
    pub fn as_byte(self) -> u8 {
        match self {
            TxStatus::Idle => b'I',
            TxStatus::InTransaction => b'T',
            TxStatus::Failed => b'E',
        }
    }
}

/// ReadyForQuery's status byte, from a whole message (header included).
pub fn ready_status(msg: &[u8]) -> Result<TxStatus, ProtocolError> {
    match msg {
        [_, _, _, _, _, status] => TxStatus::from_byte(*status),
        _ => Err(ProtocolError::malformed("ReadyForQuery")),
    }
}

/// CommandComplete's tag (e.g. `INSERT 0 1`), from a whole message (header included).
pub fn command_tag(msg: &[u8]) -> &[u8] {
    let body = msg.get(super::HEADER_LEN..).unwrap_or_default();
    body.split(|&b| b == 0).next().unwrap_or_default()
}

fn cstr(body: &[u8]) -> Option<(&str, &[u8])> {
    let end = body.iter().position(|&b| b == 0)?;
    let s = std::str::from_utf8(&body[..end]).ok()?;
    Some((s, &body[end + 1..]))
}

/// ParameterStatus name and value, from the body.
pub fn parameter_status(body: &[u8]) -> Result<(&str, &str), ProtocolError> {
    let bad = || ProtocolError::malformed("ParameterStatus");
    let (name, rest) = cstr(body).ok_or_else(bad)?;
    let (value, _) = cstr(rest).ok_or_else(bad)?;
    Ok((name, value))
}

/// BackendKeyData (pid, secret), from the body.
pub fn backend_key_data(body: &[u8]) -> Result<(i32, i32), ProtocolError> {
    match body {
        [a, b, c, d, e, f, g, h] => Ok((
            i32::from_be_bytes([*a, *b, *c, *d]),
            i32::from_be_bytes([*e, *f, *g, *h]),
        )),
        _ => Err(ProtocolError::malformed("BackendKeyData")),
    }
}

/// The fields of an ErrorResponse or NoticeResponse.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorFields {
    pub severity: String,
    pub code: String,
    pub message: String,
}

/// Parses ErrorResponse/NoticeResponse fields from the body; unknown fields are skipped.
pub fn error_fields(body: &[u8]) -> ErrorFields {
    let mut f = ErrorFields::default();
    let mut rest = body;
    while let Some((&kind, tail)) = rest.split_first() {
        if kind == 0 {
            break;
        }
        let Some((value, tail)) = cstr(tail) else {
            break;
        };
        match kind {
            b'S' => f.severity = value.to_owned(),
            b'C' => f.code = value.to_owned(),
            b'M' => f.message = value.to_owned(),
            _ => {}
        }
        rest = tail;
    }
    f
}

/// A DataRow's values as text (NULL is None), from the body.
pub fn data_row(body: &[u8]) -> Result<Vec<Option<String>>, ProtocolError> {
    let bad = || ProtocolError::malformed("DataRow");
    let count = body.get(..2).ok_or_else(bad)?;
    let count = i16::from_be_bytes([count[0], count[1]]);
    let mut at = 2;
    let mut values = Vec::new();
    for _ in 0..count.max(0) {
        let len = body.get(at..at + 4).ok_or_else(bad)?;
        let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        at += 4;
        if len < 0 {
            values.push(None);
            continue;
        }
        let value = body.get(at..at + len as usize).ok_or_else(bad)?;
        values.push(Some(String::from_utf8_lossy(value).into_owned()));
        at += len as usize;
    }
    Ok(values)
}

/// What a server asks for in an Authentication message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthRequest {
    Ok,
    Cleartext,
    Md5 { salt: [u8; 4] },
    Sasl { mechanisms: Vec<String> },
    SaslContinue(Vec<u8>),
    SaslFinal(Vec<u8>),
    Other(i32),
}

pub fn auth_request(body: &[u8]) -> Result<AuthRequest, ProtocolError> {
    let bad = || ProtocolError::malformed("Authentication request");
    if body.len() < 4 {
        return Err(bad());
    }
    let code = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
    let data = &body[4..];
    Ok(match code {
        0 => AuthRequest::Ok,
        3 => AuthRequest::Cleartext,
        5 => {
            let salt: [u8; 4] = data.try_into().map_err(|_| bad())?;
            AuthRequest::Md5 { salt }
        }
        10 => AuthRequest::Sasl {
            mechanisms: data
                .split(|&b| b == 0)
                .filter(|m| !m.is_empty())
                .map(|m| String::from_utf8_lossy(m).into_owned())
                .collect(),
        },
        11 => AuthRequest::SaslContinue(data.to_vec()),
        12 => AuthRequest::SaslFinal(data.to_vec()),
        other => AuthRequest::Other(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::builder;
    use bytes::BytesMut;

    #[test]
    fn reads_error_fields_and_status() {
        let mut b = BytesMut::new();
        builder::error_response(&mut b, "FATAL", "28P01", "password authentication failed");
        let f = error_fields(&b[5..]);
        assert_eq!(f.severity, "FATAL");
        assert_eq!(f.code, "28P01");
        assert_eq!(f.message, "password authentication failed");
        let mut b = BytesMut::new();
        builder::ready_for_query(&mut b, b'E');
        assert_eq!(ready_status(&b).unwrap(), TxStatus::Failed);
        assert!(ready_status(&b[..5]).is_err());
    }

    #[test]
    fn reads_parameter_status_and_key_data() {
        let mut b = BytesMut::new();
        builder::parameter_status(&mut b, "TimeZone", "UTC");
        assert_eq!(parameter_status(&b[5..]).unwrap(), ("TimeZone", "UTC"));
        assert!(parameter_status(b"TimeZone").is_err());
        let mut b = BytesMut::new();
        builder::backend_key_data(&mut b, 7, -9);
        assert_eq!(backend_key_data(&b[5..]).unwrap(), (7, -9));
    }

    #[test]
    fn reads_data_rows() {
        let mut b = BytesMut::new();
        builder::data_row(&mut b, &[Some("t"), None, Some("")]);
        assert_eq!(
            data_row(&b[5..]).unwrap(),
            vec![Some("t".to_string()), None, Some(String::new())]
        );
        assert!(data_row(&b[5..9]).is_err());
        assert!(data_row(&[0]).is_err());
    }

    #[test]
    fn reads_auth_requests() {
        assert_eq!(auth_request(&[0, 0, 0, 0]).unwrap(), AuthRequest::Ok);
        assert_eq!(
            auth_request(&[0, 0, 0, 5, 1, 2, 3, 4]).unwrap(),
            AuthRequest::Md5 { salt: [1, 2, 3, 4] }
        );
        assert!(auth_request(&[0, 0, 0, 5, 1]).is_err());
        assert_eq!(
            auth_request(b"\0\0\0\x0aSCRAM-SHA-256\0\0").unwrap(),
            AuthRequest::Sasl {
                mechanisms: vec!["SCRAM-SHA-256".into()]
            }
        );
    }
}
