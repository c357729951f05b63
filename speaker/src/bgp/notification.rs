//! BGP NOTIFICATION (RFC 4271 section 4.5), encoded and decoded here: zettabgp
//! keeps at most two data bytes. Every decode error in the BGP layer is one of
//! these, so that "what to send the peer" is decided where the error is found.

use std::fmt;

/// Error codes (RFC 4271 section 4.5) and subcodes.
pub mod code {
    /// Message Header Error.
    pub const HEADER: u8 = 1;
    /// Connection Not Synchronized (bad marker).
    pub const HEADER_NOT_SYNCHRONIZED: u8 = 1;
    /// Bad Message Length.
    pub const HEADER_BAD_LENGTH: u8 = 2;
    /// Bad Message Type.
    pub const HEADER_BAD_TYPE: u8 = 3;
    /// OPEN Message Error.
    pub const OPEN: u8 = 2;
    /// Unsupported Version Number.
    pub const OPEN_UNSUPPORTED_VERSION: u8 = 1;
    /// Bad Peer AS.
    pub const OPEN_BAD_PEER_AS: u8 = 2;
    /// Bad BGP Identifier.
    pub const OPEN_BAD_BGP_ID: u8 = 3;
    /// Unsupported Optional Parameter.
    pub const OPEN_UNSUPPORTED_OPTIONAL_PARAMETER: u8 = 4;
    /// Unacceptable Hold Time.
    pub const OPEN_UNACCEPTABLE_HOLD_TIME: u8 = 6;
    /// Unsupported Capability (RFC 5492).
    pub const OPEN_UNSUPPORTED_CAPABILITY: u8 = 7;
    /// UPDATE Message Error.
    pub const UPDATE: u8 = 3;
    /// Malformed Attribute List.
    pub const UPDATE_MALFORMED_ATTRIBUTE_LIST: u8 = 1;
    /// Attribute Length Error.
    pub const UPDATE_ATTRIBUTE_LENGTH: u8 = 5;
    /// Optional Attribute Error (also malformed MP_REACH/MP_UNREACH, RFC 4760).
    pub const UPDATE_OPTIONAL_ATTRIBUTE: u8 = 9;
    /// Invalid Network Field.
    pub const UPDATE_INVALID_NETWORK_FIELD: u8 = 10;
    /// Hold Timer Expired.
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    /// Finite State Machine Error (subcodes RFC 6608).
    pub const FSM: u8 = 5;
    /// Receive Unexpected Message in OpenSent State.
    pub const FSM_OPEN_SENT: u8 = 1;
    /// Receive Unexpected Message in OpenConfirm State.
    pub const FSM_OPEN_CONFIRM: u8 = 2;
    /// Receive Unexpected Message in Established State.
    pub const FSM_ESTABLISHED: u8 = 3;
    /// Cease (subcodes RFC 4486).
    pub const CEASE: u8 = 6;
    /// Administrative Shutdown.
    pub const CEASE_ADMIN_SHUTDOWN: u8 = 2;
    /// Peer De-configured.
    pub const CEASE_PEER_DECONFIGURED: u8 = 3;
    /// Other Configuration Change.
    pub const CEASE_CONFIG_CHANGE: u8 = 6;
}

/// A NOTIFICATION: code, subcode and data.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct Notification {
    /// Error code.
    pub code: u8,
    /// Error subcode.
    pub subcode: u8,
    /// Data (e.g. the offending length or attribute).
    pub data: Vec<u8>,
}

impl Notification {
    /// A notification without data.
    pub fn new(code: u8, subcode: u8) -> Self {
        Notification {
            code,
            subcode,
            data: Vec::new(),
        }
    }

    /// With data.
    pub fn with_data(code: u8, subcode: u8, data: impl Into<Vec<u8>>) -> Self {
        Notification {
            code,
            subcode,
            data: data.into(),
        }
    }

    /// The message body (after the 19-byte header).
    pub fn encode_body(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(2 + self.data.len());
        b.push(self.code);
        b.push(self.subcode);
        b.extend_from_slice(&self.data);
        b
    }

    /// Parses a body; a body shorter than two bytes is itself a length error.
    pub fn decode_body(body: &[u8]) -> Result<Self, Notification> {
        match body {
            [code, subcode, data @ ..] => Ok(Notification::with_data(*code, *subcode, data)),
            _ => Err(Notification::with_data(
                code::HEADER,
                code::HEADER_BAD_LENGTH,
                ((19 + body.len()) as u16).to_be_bytes(),
            )),
        }
    }
}

impl fmt::Display for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match (self.code, self.subcode) {
            (1, 1) => "message header error: connection not synchronized",
            (1, 2) => "message header error: bad message length",
            (1, 3) => "message header error: bad message type",
            (2, 1) => "OPEN error: unsupported version number",
            (2, 2) => "OPEN error: bad peer AS",
            (2, 3) => "OPEN error: bad BGP identifier",
            (2, 4) => "OPEN error: unsupported optional parameter",
            (2, 6) => "OPEN error: unacceptable hold time",
            (2, 7) => "OPEN error: unsupported capability",
            (2, _) => "OPEN message error",
            (3, _) => "UPDATE message error",
            (4, _) => "hold timer expired",
            (5, _) => "finite state machine error",
            (6, 2) => "cease: administrative shutdown",
            (6, 3) => "cease: peer de-configured",
            (6, 4) => "cease: administrative reset",
            (6, 5) => "cease: connection rejected",
            (6, 6) => "cease: other configuration change",
            (6, _) => "cease",
            _ => "unknown error",
        };
        write!(f, "{name} ({}/{})", self.code, self.subcode)?;
        if !self.data.is_empty() {
            write!(
                f,
                " data={}",
                self.data
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_any_amount_of_data() {
        let n = Notification::with_data(
            code::OPEN,
            code::OPEN_BAD_PEER_AS,
            vec![0xfd, 0xe8, 0, 0, 1],
        );
        assert_eq!(n.encode_body(), vec![2, 2, 0xfd, 0xe8, 0, 0, 1]);
        assert_eq!(Notification::decode_body(&n.encode_body()), Ok(n));
        assert_eq!(
            Notification::decode_body(&[6, 2]),
            Ok(Notification::new(6, 2))
        );
        let short = Notification::decode_body(&[6]).unwrap_err();
        assert_eq!((short.code, short.subcode, short.data), (1, 2, vec![0, 20]));
    }

    #[test]
    fn reads_like_a_sentence() {
        assert_eq!(
            Notification::new(4, 0).to_string(),
            "hold timer expired (4/0)"
        );
        assert_eq!(
            Notification::with_data(1, 2, vec![0, 18]).to_string(),
            "message header error: bad message length (1/2) data=0012"
        );
    }
}
