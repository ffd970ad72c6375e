//! The untagged first packet of a connection (StartupMessage, SSLRequest, GSSENCRequest,
//! CancelRequest) and the startup parameters a client may set.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use pgcorral::protocol::startup::MAX_STARTUP_PACKET_LENGTH;
use pgcorral::protocol::{StartupCodec, StartupPacket};
use pgcorral::session::StartupParams;
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    let before = buf.len();
    match StartupCodec.decode(&mut buf) {
        Ok(Some(packet)) => {
            let used = before - buf.len();
            assert!(
                used <= MAX_STARTUP_PACKET_LENGTH,
                "accepted an over-long startup packet"
            );
            if let StartupPacket::Startup { params, .. } = packet {
                let _ = StartupPacket::param(&params, "user");
                let _ = StartupParams::from_startup(&params);
            }
        }
        Ok(None) => assert_eq!(buf.len(), before, "consumed bytes without a packet"),
        Err(_) => {}
    }
});
