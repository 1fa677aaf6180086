//! The binary layout of handshake messages, version 1 (see `docs/handshake.md`).
//!
//! Fixed-width big-endian integers, one byte per enum and flag, the statement as a u32
//! length and its bytes. Every value has exactly one encoding (flags are 0 or 1, enum
//! codes are listed, nothing may follow the last field), so a payload that parses
//! re-encodes to the same bytes, and signatures over the re-encoded body are signatures
//! over what was received.

use uuid::Uuid;

use crate::crypto::{Digest, Kid, SignatureAlgorithm};
use crate::model::{AgentId, DeviceId, EventTime, VisitId};
use crate::place::{Coordinate, Datum, Fix, Provider};

use super::error::PayloadError;
use super::message::{Challenge, Message, Nonce, Party, Purpose, Reply, SIGNATURE_LEN};

/// The layout version this build writes and reads.
pub const VERSION: u8 = 1;
/// Largest statement a challenge may carry (256 KiB): a sealed visit's manifest fits.
pub const MAX_STATEMENT_BYTES: usize = 256 * 1024;

const TYPE_CHALLENGE: u8 = 1;
const TYPE_REPLY: u8 = 2;

/// Appends fields in the layout's byte order.
struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn bytes(&mut self, v: &[u8]) {
        self.0.extend_from_slice(v);
    }
    fn uuid(&mut self, v: &Uuid) {
        self.bytes(v.as_bytes());
    }
    fn opt_i64(&mut self, v: Option<i64>) {
        match v {
            None => self.u8(0),
            Some(v) => {
                self.u8(1);
                self.i64(v);
            }
        }
    }
    fn party(&mut self, p: &Party) {
        self.uuid(&p.agent_id.0);
        self.uuid(&p.device_id.0);
        self.bytes(p.kid.0.as_bytes());
        self.u8(alg_code(p.alg));
    }
    fn fix(&mut self, f: &Fix) {
        self.i32(f.coordinate.lat_e7());
        self.i32(f.coordinate.lon_e7());
        self.u8(datum_code(f.coordinate.datum()));
        self.u32(f.accuracy_m);
        self.u8(provider_code(f.provider));
        self.u8(u8::from(f.mock));
        self.i64(f.taken_at_ms);
    }
    fn time(&mut self, t: &EventTime) {
        self.i64(t.wall_ms);
        self.opt_i64(t.anchor_ms);
        self.opt_i64(t.since_anchor_ms);
    }
}

/// Reads fields in order, never past the end and never allocating from a length it was not
/// first able to bound.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], PayloadError> {
        if self.rest.len() < n {
            return Err(PayloadError::Truncated { field });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }
    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], PayloadError> {
        let bytes = self.take(N, field)?;
        bytes
            .try_into()
            .map_err(|_| PayloadError::Truncated { field })
    }
    fn u8(&mut self, field: &'static str) -> Result<u8, PayloadError> {
        Ok(self.array::<1>(field)?[0])
    }
    fn u32(&mut self, field: &'static str) -> Result<u32, PayloadError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }
    fn i32(&mut self, field: &'static str) -> Result<i32, PayloadError> {
        Ok(i32::from_be_bytes(self.array(field)?))
    }
    fn i64(&mut self, field: &'static str) -> Result<i64, PayloadError> {
        Ok(i64::from_be_bytes(self.array(field)?))
    }
    fn flag(&mut self, field: &'static str) -> Result<bool, PayloadError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(invalid(field, "a flag must be 0 or 1")),
        }
    }
    fn uuid(&mut self, field: &'static str) -> Result<Uuid, PayloadError> {
        Ok(Uuid::from_bytes(self.array(field)?))
    }
    fn digest(&mut self, field: &'static str) -> Result<Digest, PayloadError> {
        Ok(Digest(self.array(field)?))
    }
    fn opt_i64(&mut self, field: &'static str) -> Result<Option<i64>, PayloadError> {
        if self.flag(field)? {
            Ok(Some(self.i64(field)?))
        } else {
            Ok(None)
        }
    }
    fn purpose(&mut self) -> Result<Purpose, PayloadError> {
        Purpose::from_code(self.u8("purpose")?).ok_or(invalid("purpose", "unknown purpose code"))
    }
    fn party(&mut self, role: &'static str) -> Result<Party, PayloadError> {
        Ok(Party {
            agent_id: AgentId(self.uuid(role)?),
            device_id: DeviceId(self.uuid(role)?),
            kid: Kid(self.digest(role)?),
            alg: match self.u8(role)? {
                1 => SignatureAlgorithm::Ed25519,
                2 => SignatureAlgorithm::EcdsaP256Sha256,
                _ => return Err(invalid(role, "unknown signature algorithm code")),
            },
        })
    }
    fn fix(&mut self, field: &'static str) -> Result<Fix, PayloadError> {
        let lat = self.i32(field)?;
        let lon = self.i32(field)?;
        let datum = match self.u8(field)? {
            0 => Datum::Wgs84,
            1 => Datum::Gcj02,
            2 => Datum::Bd09,
            _ => return Err(invalid(field, "unknown datum code")),
        };
        let coordinate = Coordinate::new(lat, lon, datum)
            .map_err(|_| invalid(field, "coordinate out of range"))?;
        let accuracy_m = self.u32(field)?;
        let provider = match self.u8(field)? {
            0 => Provider::Gnss,
            1 => Provider::Network,
            2 => Provider::Fused,
            3 => Provider::Manual,
            4 => Provider::Other,
            _ => return Err(invalid(field, "unknown provider code")),
        };
        Ok(Fix {
            coordinate,
            accuracy_m,
            provider,
            mock: self.flag(field)?,
            taken_at_ms: self.i64(field)?,
        })
    }
    fn time(&mut self, field: &'static str) -> Result<EventTime, PayloadError> {
        Ok(EventTime {
            wall_ms: self.i64(field)?,
            anchor_ms: self.opt_i64(field)?,
            since_anchor_ms: self.opt_i64(field)?,
        })
    }
    fn statement(&mut self) -> Result<Vec<u8>, PayloadError> {
        let len = self.u32("statement length")?;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len > MAX_STATEMENT_BYTES {
            return Err(PayloadError::StatementTooLarge {
                len,
                limit: MAX_STATEMENT_BYTES,
            });
        }
        // Bounded by the limit and by the bytes actually present: `take` checks before copying.
        Ok(self.take(len, "statement")?.to_vec())
    }
    fn finish(self) -> Result<(), PayloadError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(PayloadError::TrailingBytes {
                count: self.rest.len(),
            })
        }
    }
}

fn invalid(field: &'static str, reason: &'static str) -> PayloadError {
    PayloadError::InvalidField { field, reason }
}

fn alg_code(alg: SignatureAlgorithm) -> u8 {
    match alg {
        SignatureAlgorithm::Ed25519 => 1,
        SignatureAlgorithm::EcdsaP256Sha256 => 2,
    }
}

fn datum_code(d: Datum) -> u8 {
    match d {
        Datum::Wgs84 => 0,
        Datum::Gcj02 => 1,
        Datum::Bd09 => 2,
    }
}

fn provider_code(p: Provider) -> u8 {
    match p {
        Provider::Gnss => 0,
        Provider::Network => 1,
        Provider::Fused => 2,
        Provider::Manual => 3,
        Provider::Other => 4,
    }
}

/// Everything of a challenge but its final signature: the bytes that signature covers.
pub(crate) fn encode_challenge_body(c: &Challenge) -> Result<Vec<u8>, PayloadError> {
    if c.statement.len() > MAX_STATEMENT_BYTES {
        return Err(PayloadError::StatementTooLarge {
            len: c.statement.len(),
            limit: MAX_STATEMENT_BYTES,
        });
    }
    let mut w = Writer(Vec::with_capacity(400 + c.statement.len()));
    w.u8(VERSION);
    w.u8(TYPE_CHALLENGE);
    w.u8(c.purpose.code());
    w.uuid(&c.visit_id.0);
    w.bytes(c.approval_digest.as_bytes());
    w.party(&c.lead);
    w.fix(&c.lead_fix);
    w.time(&c.lead_time);
    w.bytes(&c.nonce.0);
    w.i64(c.expires_at_ms);
    w.bytes(c.statement_digest.as_bytes());
    // Checked against MAX_STATEMENT_BYTES above, so it fits in u32.
    w.u32(u32::try_from(c.statement.len()).unwrap_or(u32::MAX));
    w.bytes(&c.statement);
    w.bytes(&c.lead_statement_sig);
    Ok(w.0)
}

/// Everything of a reply but its final signature: the bytes that signature covers.
pub(crate) fn encode_reply_body(r: &Reply) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(400));
    w.u8(VERSION);
    w.u8(TYPE_REPLY);
    w.u8(r.purpose.code());
    w.uuid(&r.visit_id.0);
    w.party(&r.partner);
    w.fix(&r.partner_fix);
    w.time(&r.partner_time);
    w.bytes(&r.nonce.0);
    w.bytes(r.statement_digest.as_bytes());
    w.bytes(r.challenge_digest.as_bytes());
    w.bytes(&r.partner_statement_sig);
    w.0
}

/// Reads exactly one message.
pub(crate) fn decode_message(bytes: &[u8]) -> Result<Message, PayloadError> {
    let mut r = Reader { rest: bytes };
    let version = r.u8("version")?;
    if version != VERSION {
        return Err(PayloadError::UnknownVersion { found: version });
    }
    let message = match r.u8("message type")? {
        TYPE_CHALLENGE => Message::Challenge(Challenge {
            purpose: r.purpose()?,
            visit_id: VisitId(r.uuid("visit id")?),
            approval_digest: r.digest("approval digest")?,
            lead: r.party("lead")?,
            lead_fix: r.fix("lead fix")?,
            lead_time: r.time("lead time")?,
            nonce: Nonce(r.array("nonce")?),
            expires_at_ms: r.i64("expiry")?,
            statement_digest: r.digest("statement digest")?,
            statement: r.statement()?,
            lead_statement_sig: r.array::<SIGNATURE_LEN>("lead statement signature")?,
            signature: r.array::<SIGNATURE_LEN>("challenge signature")?,
        }),
        TYPE_REPLY => Message::Reply(Reply {
            purpose: r.purpose()?,
            visit_id: VisitId(r.uuid("visit id")?),
            partner: r.party("partner")?,
            partner_fix: r.fix("partner fix")?,
            partner_time: r.time("partner time")?,
            nonce: Nonce(r.array("nonce")?),
            statement_digest: r.digest("statement digest")?,
            challenge_digest: r.digest("challenge digest")?,
            partner_statement_sig: r.array::<SIGNATURE_LEN>("partner statement signature")?,
            signature: r.array::<SIGNATURE_LEN>("reply signature")?,
        }),
        found => return Err(PayloadError::UnknownMessageType { found }),
    };
    r.finish()?;
    Ok(message)
}
