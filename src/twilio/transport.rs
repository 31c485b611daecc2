//! What a `wasi:http` error code says about a request: the host never sent
//! it, it never reached Twilio, or it went out and no answer came. At most
//! once depends on this table: only a request Twilio cannot have seen is
//! tried again. The glue maps the WIT error code to [`Code`] one to one;
//! the decision is here, where a test covers every code.

use crate::prelude::*;

use crate::twilio::Transport;

/// The `wasi:http` error codes (`wasi:http/types.error-code`), by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    DnsTimeout,
    DnsError,
    DestinationNotFound,
    DestinationUnavailable,
    DestinationIpProhibited,
    DestinationIpUnroutable,
    ConnectionRefused,
    ConnectionTerminated,
    ConnectionTimeout,
    ConnectionReadTimeout,
    ConnectionWriteTimeout,
    ConnectionLimitReached,
    TlsProtocolError,
    TlsCertificateError,
    TlsAlertReceived,
    HttpRequestDenied,
    HttpRequestLengthRequired,
    HttpRequestBodySize,
    HttpRequestMethodInvalid,
    HttpRequestUriInvalid,
    HttpRequestUriTooLong,
    HttpRequestHeaderSectionSize,
    HttpRequestHeaderSize,
    HttpRequestTrailerSectionSize,
    HttpRequestTrailerSize,
    HttpResponseIncomplete,
    HttpResponseHeaderSectionSize,
    HttpResponseHeaderSize,
    HttpResponseBodySize,
    HttpResponseTrailerSectionSize,
    HttpResponseTrailerSize,
    HttpResponseTransferCoding,
    HttpResponseContentCoding,
    HttpResponseTimeout,
    HttpUpgradeFailed,
    HttpProtocolError,
    LoopDetected,
    ConfigurationError,
    InternalError,
}

/// What happened to the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Meaning {
    /// The host would not send it.
    Denied,
    /// No connection was made (DNS, connect, TLS handshake): Twilio never
    /// saw the request. Retried.
    NotConnected,
    /// It may have reached Twilio. Never retried.
    NoAnswer,
}

impl Code {
    /// What the code says about the request. A host must report a request
    /// that timed out waiting for its answer as a read or response timeout,
    /// never as a connect timeout: the latter is retried.
    pub fn meaning(self) -> Meaning {
        use Code as C;
        match self {
            C::HttpRequestDenied
            | C::DestinationIpProhibited
            | C::HttpRequestMethodInvalid
            | C::HttpRequestUriInvalid
            | C::HttpRequestUriTooLong
            | C::HttpRequestHeaderSectionSize
            | C::HttpRequestHeaderSize
            | C::LoopDetected
            | C::ConfigurationError => Meaning::Denied,
            C::DnsTimeout
            | C::DnsError
            | C::DestinationNotFound
            | C::DestinationUnavailable
            | C::DestinationIpUnroutable
            | C::ConnectionRefused
            | C::ConnectionTimeout
            | C::ConnectionLimitReached
            | C::TlsProtocolError
            | C::TlsCertificateError
            | C::TlsAlertReceived => Meaning::NotConnected,
            // Everything after the connection opened: the request may have
            // gone out whole.
            C::ConnectionTerminated
            | C::ConnectionReadTimeout
            | C::ConnectionWriteTimeout
            | C::HttpRequestLengthRequired
            | C::HttpRequestBodySize
            | C::HttpRequestTrailerSectionSize
            | C::HttpRequestTrailerSize
            | C::HttpResponseIncomplete
            | C::HttpResponseHeaderSectionSize
            | C::HttpResponseHeaderSize
            | C::HttpResponseBodySize
            | C::HttpResponseTrailerSectionSize
            | C::HttpResponseTrailerSize
            | C::HttpResponseTransferCoding
            | C::HttpResponseContentCoding
            | C::HttpResponseTimeout
            | C::HttpUpgradeFailed
            | C::HttpProtocolError
            | C::InternalError => Meaning::NoAnswer,
        }
    }

    /// The code in words (its WIT name, spaced).
    pub fn name(self) -> &'static str {
        use Code as C;
        match self {
            C::DnsTimeout => "DNS timeout",
            C::DnsError => "DNS error",
            C::DestinationNotFound => "destination not found",
            C::DestinationUnavailable => "destination unavailable",
            C::DestinationIpProhibited => "destination IP prohibited",
            C::DestinationIpUnroutable => "destination IP unroutable",
            C::ConnectionRefused => "connection refused",
            C::ConnectionTerminated => "connection terminated",
            C::ConnectionTimeout => "connection timeout",
            C::ConnectionReadTimeout => "connection read timeout",
            C::ConnectionWriteTimeout => "connection write timeout",
            C::ConnectionLimitReached => "connection limit reached",
            C::TlsProtocolError => "TLS protocol error",
            C::TlsCertificateError => "TLS certificate error",
            C::TlsAlertReceived => "TLS alert received",
            C::HttpRequestDenied => "HTTP request denied",
            C::HttpRequestLengthRequired => "HTTP request length required",
            C::HttpRequestBodySize => "HTTP request body size",
            C::HttpRequestMethodInvalid => "HTTP request method invalid",
            C::HttpRequestUriInvalid => "HTTP request URI invalid",
            C::HttpRequestUriTooLong => "HTTP request URI too long",
            C::HttpRequestHeaderSectionSize => "HTTP request header section size",
            C::HttpRequestHeaderSize => "HTTP request header size",
            C::HttpRequestTrailerSectionSize => "HTTP request trailer section size",
            C::HttpRequestTrailerSize => "HTTP request trailer size",
            C::HttpResponseIncomplete => "HTTP response incomplete",
            C::HttpResponseHeaderSectionSize => "HTTP response header section size",
            C::HttpResponseHeaderSize => "HTTP response header size",
            C::HttpResponseBodySize => "HTTP response body size",
            C::HttpResponseTrailerSectionSize => "HTTP response trailer section size",
            C::HttpResponseTrailerSize => "HTTP response trailer size",
            C::HttpResponseTransferCoding => "HTTP response transfer coding",
            C::HttpResponseContentCoding => "HTTP response content coding",
            C::HttpResponseTimeout => "HTTP response timeout",
            C::HttpUpgradeFailed => "HTTP upgrade failed",
            C::HttpProtocolError => "HTTP protocol error",
            C::LoopDetected => "loop detected",
            C::ConfigurationError => "configuration error",
            C::InternalError => "internal error",
        }
    }
}

/// The transport failure a code (with the detail its payload carried, if
/// any) means.
pub fn meaning(code: Code, detail: Option<&str>) -> Transport {
    let said = match detail {
        Some(detail) => format!("{}: {detail}", code.name()),
        None => code.name().to_owned(),
    };
    match code.meaning() {
        Meaning::Denied => {
            Transport::Denied(format!("the host would not send the request ({said})"))
        }
        Meaning::NotConnected => Transport::NotConnected(said),
        Meaning::NoAnswer => match code {
            Code::ConnectionReadTimeout | Code::HttpResponseTimeout => {
                Transport::NoAnswer(format!("no answer in time ({said})"))
            }
            _ => Transport::NoAnswer(format!("the request failed after it was sent ({said})")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Code as C;

    /// Every code, with what it must mean: the table at-most-once rests on.
    const TABLE: [(Code, Meaning); 39] = [
        (C::DnsTimeout, Meaning::NotConnected),
        (C::DnsError, Meaning::NotConnected),
        (C::DestinationNotFound, Meaning::NotConnected),
        (C::DestinationUnavailable, Meaning::NotConnected),
        (C::DestinationIpProhibited, Meaning::Denied),
        (C::DestinationIpUnroutable, Meaning::NotConnected),
        (C::ConnectionRefused, Meaning::NotConnected),
        (C::ConnectionTerminated, Meaning::NoAnswer),
        (C::ConnectionTimeout, Meaning::NotConnected),
        (C::ConnectionReadTimeout, Meaning::NoAnswer),
        (C::ConnectionWriteTimeout, Meaning::NoAnswer),
        (C::ConnectionLimitReached, Meaning::NotConnected),
        (C::TlsProtocolError, Meaning::NotConnected),
        (C::TlsCertificateError, Meaning::NotConnected),
        (C::TlsAlertReceived, Meaning::NotConnected),
        (C::HttpRequestDenied, Meaning::Denied),
        (C::HttpRequestLengthRequired, Meaning::NoAnswer),
        (C::HttpRequestBodySize, Meaning::NoAnswer),
        (C::HttpRequestMethodInvalid, Meaning::Denied),
        (C::HttpRequestUriInvalid, Meaning::Denied),
        (C::HttpRequestUriTooLong, Meaning::Denied),
        (C::HttpRequestHeaderSectionSize, Meaning::Denied),
        (C::HttpRequestHeaderSize, Meaning::Denied),
        (C::HttpRequestTrailerSectionSize, Meaning::NoAnswer),
        (C::HttpRequestTrailerSize, Meaning::NoAnswer),
        (C::HttpResponseIncomplete, Meaning::NoAnswer),
        (C::HttpResponseHeaderSectionSize, Meaning::NoAnswer),
        (C::HttpResponseHeaderSize, Meaning::NoAnswer),
        (C::HttpResponseBodySize, Meaning::NoAnswer),
        (C::HttpResponseTrailerSectionSize, Meaning::NoAnswer),
        (C::HttpResponseTrailerSize, Meaning::NoAnswer),
        (C::HttpResponseTransferCoding, Meaning::NoAnswer),
        (C::HttpResponseContentCoding, Meaning::NoAnswer),
        (C::HttpResponseTimeout, Meaning::NoAnswer),
        (C::HttpUpgradeFailed, Meaning::NoAnswer),
        (C::HttpProtocolError, Meaning::NoAnswer),
        (C::LoopDetected, Meaning::Denied),
        (C::ConfigurationError, Meaning::Denied),
        (C::InternalError, Meaning::NoAnswer),
    ];

    #[test]
    fn every_code_has_its_meaning() {
        for (code, want) in TABLE {
            assert_eq!(code.meaning(), want, "{code:?}");
            let transport = meaning(code, Some("x"));
            let retried = matches!(
                crate::twilio::classify(&crate::twilio::Response::Transport(transport.clone())),
                crate::twilio::Verdict::Retry { .. }
            );
            assert_eq!(
                retried,
                want == Meaning::NotConnected,
                "{code:?}: {transport:?}"
            );
        }
        assert_eq!(
            meaning(C::TlsAlertReceived, Some("bad certificate")),
            Transport::NotConnected("TLS alert received: bad certificate".into())
        );
    }
}
