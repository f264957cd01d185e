//! Stream replies read straight from the wire's [`Value`], into
//! [`Entry`]s.
//!
//! Not the crate's typed replies (`StreamReadReply`,
//! `StreamAutoClaimReply`): `query_async` walks the whole reply once for
//! nested errors, and the typed reply clones every field into a `HashMap`
//! of its own, losing the fields' order. Here the reply is taken apart by
//! value, each field's bytes moved into the entry, in the order the server
//! sent them.

use redis::aio::ConnectionLike;
use redis::{Cmd, ErrorKind, RedisError, RedisResult, Value};

use super::entry::Entry;

/// Sends `command` and returns its reply as it came: an error reply is an
/// `Err`, as with `query_async`, but the rest is not walked for nested
/// ones (a stream reply has none).
pub(super) async fn query(conn: &mut impl ConnectionLike, command: &Cmd) -> RedisResult<Value> {
    match conn.req_packed_command(command).await? {
        error @ Value::ServerError(_) => error.extract_error(),
        value => Ok(value),
    }
}

/// The entries of an `XREADGROUP` reply: nil (nothing new before the
/// block ran out), or, per stream read, its key and its entries (an array
/// of pairs in RESP2, a map in RESP3). Each has a delivery count of 1,
/// the count of a first delivery.
pub(super) fn read(reply: Value) -> RedisResult<Vec<Entry>> {
    let streams = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Map(streams) => streams.into_iter().map(|(_, entries)| entries).collect(),
        Value::Array(streams) => streams
            .into_iter()
            .map(|stream| match stream {
                Value::Array(mut pair) if pair.len() == 2 => Ok(pair.swap_remove(1)),
                other => Err(unexpected("XREADGROUP", &other)),
            })
            .collect::<RedisResult<Vec<_>>>()?,
        other => return Err(unexpected("XREADGROUP", &other)),
    };
    let mut out = Vec::new();
    for entries in streams {
        push_entries(&mut out, entries, "XREADGROUP")?;
    }
    Ok(out)
}

/// An `XAUTOCLAIM` reply: the cursor to go on from, and the entries
/// claimed (delivery count 1 until looked up). Ids of entries deleted
/// meanwhile (the reply's third part, Redis 7) are not entries.
pub(super) fn autoclaim(reply: Value) -> RedisResult<(String, Vec<Entry>)> {
    let Value::Array(parts) = reply else {
        return Err(unexpected("XAUTOCLAIM", &reply));
    };
    let mut parts = parts.into_iter();
    let (Some(cursor), Some(entries)) = (parts.next(), parts.next()) else {
        return Err((ErrorKind::UnexpectedReturnType, "XAUTOCLAIM: a short reply").into());
    };
    let cursor = string(cursor, "XAUTOCLAIM")?;
    let mut out = Vec::new();
    push_entries(&mut out, entries, "XAUTOCLAIM")?;
    Ok((cursor, out))
}

/// The entries of an `XRANGE` reply.
pub(super) fn range(reply: Value) -> RedisResult<Vec<Entry>> {
    let mut out = Vec::new();
    push_entries(&mut out, reply, "XRANGE")?;
    Ok(out)
}

/// Appends the entries of an array of `[id, [field, value, ...]]` to
/// `out`. An entry deleted while pending comes as `[id, nil]`: it has no
/// fields.
fn push_entries(out: &mut Vec<Entry>, entries: Value, command: &'static str) -> RedisResult<()> {
    let Value::Array(entries) = entries else {
        return Err(unexpected(command, &entries));
    };
    out.reserve(entries.len());
    for entry in entries {
        let Value::Array(pair) = entry else {
            return Err(unexpected(command, &entry));
        };
        let mut pair = pair.into_iter();
        let (Some(id), Some(fields)) = (pair.next(), pair.next()) else {
            return Err((
                ErrorKind::UnexpectedReturnType,
                "an entry without its fields",
            )
                .into());
        };
        let fields = match fields {
            Value::Nil => Vec::new(),
            Value::Array(flat) => {
                let mut fields = Vec::with_capacity(flat.len() / 2);
                let mut flat = flat.into_iter();
                while let (Some(name), Some(value)) = (flat.next(), flat.next()) {
                    fields.push((string(name, command)?, bytes(value)));
                }
                fields
            }
            other => return Err(unexpected(command, &other)),
        };
        out.push(Entry {
            id: string(id, command)?,
            fields,
            deliveries: 1,
        });
    }
    Ok(())
}

/// A name or an id: text, with anything not UTF-8 replaced.
fn string(value: Value, command: &'static str) -> RedisResult<String> {
    match value {
        Value::BulkString(bytes) => Ok(String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())),
        Value::SimpleString(s) => Ok(s),
        other => Err(unexpected(command, &other)),
    }
}

/// A field's value: its bytes (a bulk string; anything else as it reads).
fn bytes(value: Value) -> Vec<u8> {
    match value {
        Value::BulkString(bytes) => bytes,
        Value::SimpleString(s) => s.into_bytes(),
        other => format!("{other:?}").into_bytes(),
    }
}

fn unexpected(command: &'static str, got: &Value) -> RedisError {
    let kind = match got {
        Value::Nil => "nil",
        Value::Int(_) => "an integer",
        Value::Array(_) => "an array",
        Value::Map(_) => "a map",
        _ => "another type",
    };
    (
        ErrorKind::UnexpectedReturnType,
        "an unexpected reply",
        format!("{command}: {kind} where the stream reply has other data"),
    )
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn entry(id: &str, fields: &[&str]) -> Value {
        Value::Array(vec![
            bulk(id),
            Value::Array(fields.iter().map(|f| bulk(f)).collect()),
        ])
    }

    fn pairs(entry: &Entry) -> Vec<(&str, &[u8])> {
        entry
            .fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect()
    }

    #[test]
    fn a_resp2_read_keeps_the_fields_in_order() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("jobs"),
            Value::Array(vec![
                entry("1-0", &["b", "2", "a", "1", "b", "3"]),
                entry("2-0", &[]),
            ]),
        ])]);
        let entries = read(reply).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].id, "1-0");
        assert_eq!(
            pairs(&entries[0]),
            [("b", &b"2"[..]), ("a", b"1"), ("b", b"3")]
        );
        assert_eq!(entries[0].deliveries, 1);
        assert_eq!(entries[1].id, "2-0");
        assert!(entries[1].fields.is_empty());
    }

    #[test]
    fn a_resp3_read_is_a_map() {
        let reply = Value::Map(vec![(
            bulk("jobs"),
            Value::Array(vec![entry("5-1", &["k", "v"])]),
        )]);
        let entries = read(reply).unwrap();
        assert_eq!(entries[0].id, "5-1");
        assert_eq!(pairs(&entries[0]), [("k", &b"v"[..])]);
    }

    #[test]
    fn nil_is_nothing_new_and_a_deleted_entry_has_no_fields() {
        assert!(read(Value::Nil).unwrap().is_empty());
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("jobs"),
            Value::Array(vec![Value::Array(vec![bulk("3-0"), Value::Nil])]),
        ])]);
        let entries = read(reply).unwrap();
        assert_eq!(entries[0].id, "3-0");
        assert!(entries[0].fields.is_empty());
    }

    #[test]
    fn an_autoclaim_reply_gives_its_cursor_and_skips_deleted_ids() {
        let reply = Value::Array(vec![
            bulk("7-0"),
            Value::Array(vec![entry("4-0", &["x", "y"])]),
            Value::Array(vec![bulk("6-0")]),
        ]);
        let (cursor, entries) = autoclaim(reply).unwrap();
        assert_eq!(cursor, "7-0");
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].id, "4-0");
        assert_eq!(pairs(&entries[0]), [("x", &b"y"[..])]);
    }

    #[test]
    fn a_malformed_reply_is_an_error_not_a_panic() {
        for reply in [
            Value::Int(3),
            Value::Array(vec![Value::Int(1)]),
            Value::Array(vec![Value::Array(vec![bulk("jobs"), Value::Int(1)])]),
            Value::Array(vec![Value::Array(vec![
                bulk("jobs"),
                Value::Array(vec![Value::Array(vec![bulk("1-0")])]),
            ])]),
        ] {
            let err = read(reply).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::UnexpectedReturnType, "{err}");
        }
        assert!(autoclaim(Value::Array(vec![bulk("0-0")])).is_err());
        assert!(autoclaim(Value::Nil).is_err());
    }

    #[test]
    fn a_field_name_that_is_not_utf8_is_replaced_not_refused() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("jobs"),
            Value::Array(vec![Value::Array(vec![
                bulk("1-0"),
                Value::Array(vec![Value::BulkString(vec![0xff, b'a']), bulk("v")]),
            ])]),
        ])]);
        let entries = read(reply).unwrap();
        assert_eq!(entries[0].fields[0].0, "\u{fffd}a");
    }
}
