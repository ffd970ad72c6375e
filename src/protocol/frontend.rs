//! Reading the frontend messages the pooler looks into: Parse's query text and Bind's
//! parameters (for routing by sharding key).

use super::ProtocolError;

fn cstr(body: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = body.iter().position(|&b| b == 0)?;
    Some((&body[..end], &body[end + 1..]))
}

/// Parse: (statement name, query text), from the body.
pub fn parse_message(body: &[u8]) -> Result<(&str, &str), ProtocolError> {
    let bad = || ProtocolError::malformed("Parse");
    let (name, rest) = cstr(body).ok_or_else(bad)?;
    let (query, _) = cstr(rest).ok_or_else(bad)?;
    Ok((
        std::str::from_utf8(name).map_err(|_| bad())?,
        std::str::from_utf8(query).map_err(|_| bad())?,
    ))
}

/// One Bind parameter: its format (0 text, 1 binary) and value (None is NULL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindParam<'a> {
    pub binary: bool,
    pub value: Option<&'a [u8]>,
}

/// Bind: (statement name, parameters), from the body.
pub fn bind_message(body: &[u8]) -> Result<(&str, Vec<BindParam<'_>>), ProtocolError> {
    let bad = || ProtocolError::malformed("Bind");
    let (_portal, rest) = cstr(body).ok_or_else(bad)?;
    let (statement, rest) = cstr(rest).ok_or_else(bad)?;
    let statement = std::str::from_utf8(statement).map_err(|_| bad())?;
    let mut at = 0;
    let take_i16 = |at: &mut usize| -> Result<i16, ProtocolError> {
        let b = rest.get(*at..*at + 2).ok_or_else(bad)?;
        *at += 2;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    };
    let nformats = take_i16(&mut at)?.max(0) as usize;
    let mut formats = Vec::with_capacity(nformats);
    for _ in 0..nformats {
        formats.push(take_i16(&mut at)? == 1);
    }
    let nparams = take_i16(&mut at)?.max(0) as usize;
    let mut params = Vec::with_capacity(nparams);
    for i in 0..nparams {
        let len = rest.get(at..at + 4).ok_or_else(bad)?;
        let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        at += 4;
        let value = if len < 0 {
            None
        } else {
            let v = rest.get(at..at + len as usize).ok_or_else(bad)?;
            at += len as usize;
            Some(v)
        };
        let binary = match formats.len() {
            0 => false,
            1 => formats[0],
            _ => *formats.get(i).ok_or_else(bad)?,
        };
        params.push(BindParam { binary, value });
    }
    Ok((statement, params))
}

impl BindParam<'_> {
    /// The parameter as a bigint: decimal text, or binary int8/int4/int2.
    pub fn as_i64(&self) -> Option<i64> {
        let v = self.value?;
        if self.binary {
            match v.len() {
                8 => Some(i64::from_be_bytes(v.try_into().ok()?)),
                4 => Some(i32::from_be_bytes(v.try_into().ok()?).into()),
                2 => Some(i16::from_be_bytes(v.try_into().ok()?).into()),
                _ => None,
            }
        } else {
            std::str::from_utf8(v).ok()?.trim().parse().ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(formats: &[i16], params: &[Option<&[u8]>]) -> Vec<u8> {
        let mut b = b"portal\0stmt\0".to_vec();
        b.extend((formats.len() as i16).to_be_bytes());
        for f in formats {
            b.extend(f.to_be_bytes());
        }
        b.extend((params.len() as i16).to_be_bytes());
        for p in params {
            match p {
                Some(v) => {
                    b.extend((v.len() as i32).to_be_bytes());
                    b.extend(*v);
                }
                None => b.extend((-1i32).to_be_bytes()),
            }
        }
        b.extend(0i16.to_be_bytes());
        b
    }

    #[test]
    fn reads_text_and_binary_parameters() {
        let eight = 42i64.to_be_bytes();
        let body = bind(&[0, 1], &[Some(b"-7"), Some(&eight)]);
        let (stmt, params) = bind_message(&body).unwrap();
        assert_eq!(stmt, "stmt");
        assert_eq!(params[0].as_i64(), Some(-7));
        assert_eq!(params[1].as_i64(), Some(42));
        let four = (-5i32).to_be_bytes();
        let body = bind(&[1], &[Some(&four), None]);
        let (_, params) = bind_message(&body).unwrap();
        assert_eq!(params[0].as_i64(), Some(-5));
        assert_eq!(params[1].as_i64(), None);
    }

    #[test]
    fn refuses_truncated_binds_and_parses() {
        let body = bind(&[0], &[Some(b"1")]);
        for cut in 0..body.len() - 2 {
            assert!(
                bind_message(&body[..cut]).is_err() || cut >= body.len() - 2,
                "cut {cut}"
            );
        }
        assert_eq!(
            parse_message(b"s1\0SELECT $1\0\0\0").unwrap(),
            ("s1", "SELECT $1")
        );
        assert!(parse_message(b"s1\0SELECT").is_err());
    }
}
