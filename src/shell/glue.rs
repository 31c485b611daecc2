//! The only code that touches the WIT bindings and the host's imports: it
//! converts WIT records to the core's types and back, and implements the
//! driver's [`Host`] with the `host` interface, the wall clock and
//! `wasi:http/outgoing-handler`. No product decision lives here.

// The generated export shims take one argument per flattened record field.
#![allow(clippy::too_many_arguments)]

use crate::prelude::*;

use crate::model;
use crate::shell::driver::{self, Cache, Host};
use crate::twilio::transport;
use crate::twilio::{self, Request, Response, Transport};
use core::cell::Cell;

wit_bindgen::generate!({
    path: "wit",
    world: "sms-notification",
});

use self::sms_notification::extension::{host, types};
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, HeaderError, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};

// Without std, `memcmp` (which `core` calls) comes from WASI's libc, as it
// would with std; nothing else of the libc is referenced, so nothing else
// is linked.
#[link(name = "c")]
unsafe extern "C" {}

#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

/// The canonical ABI's allocator export: the host calls it to place
/// strings and lists in the component's memory. With std, the standard
/// library provides it; without, the component must. Alignments come from
/// the canonical ABI (powers of two up to 8) and sizes from values already
/// admitted into a 16 MiB sandbox.
#[unsafe(no_mangle)]
unsafe extern "C" fn cabi_realloc(
    old: *mut u8,
    old_len: usize,
    align: usize,
    new_len: usize,
) -> *mut u8 {
    use alloc::alloc::{Layout, alloc, realloc};
    if new_len == 0 {
        // A well-aligned, never dereferenced pointer for an empty value.
        return align as *mut u8;
    }
    let Ok(layout) = Layout::from_size_align(new_len, align) else {
        core::arch::wasm32::unreachable()
    };
    // SAFETY: the canonical ABI passes back a pointer this function
    // returned, with the size and alignment it was allocated with.
    let new = unsafe {
        if old_len == 0 {
            alloc(layout)
        } else {
            realloc(
                old,
                Layout::from_size_align_unchecked(old_len, align),
                new_len,
            )
        }
    };
    if new.is_null() {
        // Out of memory: the call traps, as with std.
        core::arch::wasm32::unreachable()
    }
    new
}

/// A panic is a bug: the call traps, and the host throws the instance away
/// (its durable state is untouched). Nothing is printed: the sandbox has no
/// stdio.
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}

struct Component;

export!(Component);

impl Guest for Component {
    fn validate_settings(json: String) -> Result<(), Vec<types::Problem>> {
        with_host(|host| driver::validate_settings(host, &json))
            .map_err(|ps| ps.into_iter().map(problem).collect())
    }

    fn on_delivery_status(report: types::DeliveryReport) -> Result<types::Outcome, types::Error> {
        let report = crate::calls::status::Report {
            url: report.url,
            params: report.params,
            signature: report.signature,
        };
        convert(with_host(|host| driver::on_delivery_status(host, &report)))
    }

    fn preview(
        settings: String,
        sample: types::Sample,
    ) -> Result<types::Preview, Vec<types::Problem>> {
        let sample = crate::calls::preview::Sample {
            sender_name: sample.sender_name,
            text: sample.text,
            unread: sample.unread,
        };
        match with_host(|host| driver::preview(host, &settings, &sample)) {
            Ok(p) => Ok(types::Preview {
                body: p.body,
                encoding: match p.encoding {
                    crate::text::segments::Encoding::Gsm7 => types::Encoding::Gsm7,
                    crate::text::segments::Encoding::Ucs2 => types::Encoding::Ucs2,
                },
                segments: p.segments,
                max_segments: p.max_segments,
                chars_left: p.chars_left,
                shortened: p.shortened,
            }),
            Err(ps) => Err(ps.into_iter().map(problem).collect()),
        }
    }

    fn inspect(state: Vec<host::Entry>) -> types::Inspection {
        let state: Vec<(String, Vec<u8>)> = state.into_iter().map(|e| (e.key, e.value)).collect();
        let i = crate::calls::inspect::inspect(&state);
        types::Inspection {
            pending: i
                .pending
                .into_iter()
                .map(|p| types::PendingView {
                    conversation: p.conversation,
                    recipient: p.recipient,
                    unread: p.unread,
                    due_at: p.due_at,
                    attempts: p.attempts,
                    held: p.held.map(Into::into),
                })
                .collect(),
            sends: i
                .sends
                .into_iter()
                .map(|s| types::SendView {
                    conversation: s.conversation,
                    recipient: s.recipient,
                    sid: s.sid,
                    to: s.to,
                    at: s.at,
                    status: s.status,
                    error_code: s.error_code,
                })
                .collect(),
            suppressions: i
                .suppressions
                .into_iter()
                .map(|s| types::SuppressionView {
                    recipient: s.recipient,
                    number: s.number,
                    reason: skip(s.reason),
                })
                .collect(),
            paused: i.paused.map(|p| types::PauseView {
                until: p.until,
                error: twilio_error(p.error),
                setting: p.setting,
            }),
            unreadable: i.unreadable,
        }
    }

    fn on_message(message: types::Message) -> Result<types::Outcome, types::Error> {
        let message = message_in(message);
        convert(with_host(|host| driver::on_message(host, &message)))
    }

    fn on_read(receipt: types::Receipt) -> Result<types::Outcome, types::Error> {
        let receipt = model::Receipt {
            conversation: receipt.conversation,
            reader: receipt.reader,
            message: receipt.message,
            read_at: receipt.read_at,
        };
        convert(with_host(|host| driver::on_read(host, &receipt)))
    }

    fn on_edit(message: types::Message) -> Result<types::Outcome, types::Error> {
        let message = message_in(message);
        convert(with_host(|host| driver::on_edit(host, &message)))
    }

    fn on_delete(deletion: types::Deletion) -> Result<types::Outcome, types::Error> {
        let deletion = model::Deletion {
            conversation: deletion.conversation,
            message: deletion.message,
            deleted_at: deletion.deleted_at,
        };
        convert(with_host(|host| driver::on_delete(host, &deletion)))
    }

    fn on_timer(key: String) -> Result<types::Outcome, types::Error> {
        convert(with_host(|host| driver::on_timer(host, &key)))
    }
}

/// A message as the core takes it.
fn message_in(message: types::Message) -> model::Message {
    model::Message {
        id: message.id,
        conversation: message.conversation,
        kind: match message.kind {
            types::ConversationKind::OneOnOne => model::ConversationKind::OneOnOne,
            types::ConversationKind::Group => model::ConversationKind::Group,
        },
        format: match message.format {
            types::MessageFormat::Text => model::Format::Text,
            types::MessageFormat::Image => model::Format::Image,
            types::MessageFormat::Video => model::Format::Video,
            types::MessageFormat::Audio => model::Format::Audio,
            types::MessageFormat::File => model::Format::File,
            types::MessageFormat::Custom => model::Format::Custom,
        },
        sender: message.sender,
        receiver: message.receiver,
        text: message.text,
        sent_at: message.sent_at,
    }
}

/// The host, as seen through the WIT imports, with what this instance
/// remembers between calls.
struct Wit {
    cache: Cache,
}

/// The instance's cache between calls.
struct Instance(Cell<Option<Cache>>);

// SAFETY: a component instance runs on one thread, and an export is never
// re-entered while it runs (the component model forbids it), so the cell
// is never touched from two places at once.
unsafe impl Sync for Instance {}

static CACHE: Instance = Instance(Cell::new(None));

/// Runs `call` on the host, with the instance's cache.
fn with_host<R>(call: impl FnOnce(&mut Wit) -> R) -> R {
    let mut host = Wit {
        cache: CACHE.0.take().unwrap_or_default(),
    };
    let result = call(&mut host);
    CACHE.0.set(Some(host.cache));
    result
}

impl Host for Wit {
    fn settings(&mut self) -> Option<String> {
        host::settings()
    }

    fn settings_revision(&mut self) -> u64 {
        host::settings_revision()
    }

    fn cache(&mut self) -> &mut Cache {
        &mut self.cache
    }

    fn user(&mut self, uid: &str) -> Option<model::User> {
        host::find_user(uid).map(|u| model::User {
            uid: u.uid,
            name: u.name,
            presence: match u.presence {
                types::Presence::Online => model::Presence::Online,
                types::Presence::Offline => model::Presence::Offline,
            },
            metadata: u.metadata,
        })
    }

    fn state_get(&mut self, key: &str) -> Option<Vec<u8>> {
        host::state_get(key)
    }

    fn commit(&mut self, changes: Vec<model::Change>) -> Result<(), String> {
        use host::Change;
        let changes: Vec<Change> = changes
            .into_iter()
            .map(|change| match change {
                model::Change::Put { key, value } => Change::Put(host::Entry { key, value }),
                model::Change::Delete { key } => Change::Delete(key),
                model::Change::SetTimer { key, due_at } => {
                    Change::SetTimer(host::Timer { key, due_at })
                }
                model::Change::CancelTimer { key } => Change::CancelTimer(key),
            })
            .collect();
        host::commit(&changes)
    }

    fn log(&mut self, level: model::Level, line: &str) {
        let level = match level {
            model::Level::Debug => types::Level::Debug,
            model::Level::Info => types::Level::Info,
            model::Level::Warn => types::Level::Warn,
            model::Level::Error => types::Level::Error,
        };
        host::log(level, line)
    }

    fn now(&mut self) -> model::Millis {
        let now = wasip2::clocks::wall_clock::now();
        now.seconds * 1000 + u64::from(now.nanoseconds / 1_000_000)
    }

    fn send(&mut self, request: &Request) -> Response {
        send(request).unwrap_or_else(Response::Transport)
    }

    fn utc_offset(&mut self, zone: &str, at: model::Millis) -> Option<i32> {
        host::utc_offset(zone, at)
    }
}

/// Largest write into a WASI output stream the host must accept at once.
const CHUNK: usize = 4096;

/// A failure on our side of the request, before anything left.
fn local(what: String) -> Transport {
    Transport::Denied(what)
}

/// POSTs `request` to Twilio over `wasi:http`, with timeouts.
fn send(request: &Request) -> Result<Response, Transport> {
    let headers = Fields::from_list(&[
        (
            "authorization".into(),
            request.authorization.as_bytes().to_vec(),
        ),
        (
            "content-type".into(),
            twilio::CONTENT_TYPE.as_bytes().to_vec(),
        ),
        (
            "content-length".into(),
            request.body.len().to_string().into_bytes(),
        ),
    ])
    .map_err(|e| {
        local(match e {
            HeaderError::InvalidSyntax => "a request header is not valid".to_owned(),
            HeaderError::Forbidden => "the host forbids a request header".to_owned(),
            HeaderError::Immutable => "the request headers cannot be changed".to_owned(),
        })
    })?;
    let outgoing = OutgoingRequest::new(headers);
    let refused = |what: &str| local(format!("the host refused the request's {what}"));
    outgoing
        .set_method(&Method::Post)
        .map_err(|()| refused("method"))?;
    outgoing
        .set_scheme(Some(&Scheme::Https))
        .map_err(|()| refused("scheme"))?;
    outgoing
        .set_authority(Some(twilio::HOST))
        .map_err(|()| refused("authority"))?;
    outgoing
        .set_path_with_query(Some(&request.path))
        .map_err(|()| refused("path"))?;
    let options = RequestOptions::new();
    let timeout = Some(twilio::TIMEOUT_MS * 1_000_000);
    // A host may not support some timeouts; the others still apply.
    let _ = options.set_connect_timeout(timeout);
    let _ = options.set_first_byte_timeout(timeout);
    let _ = options.set_between_bytes_timeout(timeout);
    let body = outgoing.body().map_err(|()| refused("body"))?;

    // `handle` first: the host starts the request and then reads the body.
    let future = outgoing_handler::handle(outgoing, Some(options)).map_err(error_code)?;
    // If the host refuses the request, it closes the body stream: the
    // response future then says why, which beats "stream closed". A
    // response, when one comes, says more than a failed write: it wins.
    let written = write_body(&body, request.body.as_bytes());
    let finished = written.and_then(|()| OutgoingBody::finish(body, None).map_err(error_code));

    future.subscribe().block();
    let response = match future.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(error_code(code)),
        Some(Err(())) | None => {
            return Err(finished
                .err()
                .unwrap_or_else(|| Transport::NoAnswer("the response was already taken".into())));
        }
    };
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .first()
        .and_then(|v| core::str::from_utf8(v).ok()?.trim().parse().ok());
    let incoming = response
        .consume()
        .map_err(|()| local("the response body was already taken".into()))?;
    let mut bytes = Vec::new();
    {
        let stream = incoming
            .stream()
            .map_err(|()| local("the response body stream was already taken".into()))?;
        while bytes.len() < twilio::MAX_RESPONSE_BYTES {
            match stream.blocking_read((twilio::MAX_RESPONSE_BYTES - bytes.len()) as u64) {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(wasip2::io::streams::StreamError::Closed) => break,
                Err(wasip2::io::streams::StreamError::LastOperationFailed(_)) => {
                    return Err(Transport::NoAnswer("reading the response failed".into()));
                }
            }
        }
    }
    Ok(Response::Http {
        status,
        body: bytes,
        retry_after,
    })
}

/// Writes the body in chunks the host must accept; the stream is dropped
/// before the body is finished, as WASI requires.
fn write_body(body: &OutgoingBody, bytes: &[u8]) -> Result<(), Transport> {
    let stream = body
        .write()
        .map_err(|()| local("the host refused the request's body stream".into()))?;
    for chunk in bytes.chunks(CHUNK) {
        stream
            .blocking_write_and_flush(chunk)
            .map_err(|_| Transport::NoAnswer("writing the request body failed".into()))?;
    }
    Ok(())
}

/// A `wasi:http` error code as the core's [`transport::Code`], with the
/// detail its payload carries; the core decides what it means.
fn error_code(code: ErrorCode) -> Transport {
    use ErrorCode as E;
    use transport::Code as C;
    let (code, detail) = match code {
        E::DnsTimeout => (C::DnsTimeout, None),
        E::DnsError(e) => (C::DnsError, e.rcode),
        E::DestinationNotFound => (C::DestinationNotFound, None),
        E::DestinationUnavailable => (C::DestinationUnavailable, None),
        E::DestinationIpProhibited => (C::DestinationIpProhibited, None),
        E::DestinationIpUnroutable => (C::DestinationIpUnroutable, None),
        E::ConnectionRefused => (C::ConnectionRefused, None),
        E::ConnectionTerminated => (C::ConnectionTerminated, None),
        E::ConnectionTimeout => (C::ConnectionTimeout, None),
        E::ConnectionReadTimeout => (C::ConnectionReadTimeout, None),
        E::ConnectionWriteTimeout => (C::ConnectionWriteTimeout, None),
        E::ConnectionLimitReached => (C::ConnectionLimitReached, None),
        E::TlsProtocolError => (C::TlsProtocolError, None),
        E::TlsCertificateError => (C::TlsCertificateError, None),
        E::TlsAlertReceived(e) => (C::TlsAlertReceived, e.alert_message),
        E::HttpRequestDenied => (C::HttpRequestDenied, None),
        E::HttpRequestLengthRequired => (C::HttpRequestLengthRequired, None),
        E::HttpRequestBodySize(_) => (C::HttpRequestBodySize, None),
        E::HttpRequestMethodInvalid => (C::HttpRequestMethodInvalid, None),
        E::HttpRequestUriInvalid => (C::HttpRequestUriInvalid, None),
        E::HttpRequestUriTooLong => (C::HttpRequestUriTooLong, None),
        E::HttpRequestHeaderSectionSize(_) => (C::HttpRequestHeaderSectionSize, None),
        E::HttpRequestHeaderSize(_) => (C::HttpRequestHeaderSize, None),
        E::HttpRequestTrailerSectionSize(_) => (C::HttpRequestTrailerSectionSize, None),
        E::HttpRequestTrailerSize(_) => (C::HttpRequestTrailerSize, None),
        E::HttpResponseIncomplete => (C::HttpResponseIncomplete, None),
        E::HttpResponseHeaderSectionSize(_) => (C::HttpResponseHeaderSectionSize, None),
        E::HttpResponseHeaderSize(_) => (C::HttpResponseHeaderSize, None),
        E::HttpResponseBodySize(_) => (C::HttpResponseBodySize, None),
        E::HttpResponseTrailerSectionSize(_) => (C::HttpResponseTrailerSectionSize, None),
        E::HttpResponseTrailerSize(_) => (C::HttpResponseTrailerSize, None),
        E::HttpResponseTransferCoding(s) => (C::HttpResponseTransferCoding, s),
        E::HttpResponseContentCoding(s) => (C::HttpResponseContentCoding, s),
        E::HttpResponseTimeout => (C::HttpResponseTimeout, None),
        E::HttpUpgradeFailed => (C::HttpUpgradeFailed, None),
        E::HttpProtocolError => (C::HttpProtocolError, None),
        E::LoopDetected => (C::LoopDetected, None),
        E::ConfigurationError => (C::ConfigurationError, None),
        E::InternalError(s) => (C::InternalError, s),
    };
    transport::meaning(code, detail.as_deref())
}

fn problem(p: model::Problem) -> types::Problem {
    types::Problem {
        field: p.field,
        message: p.message,
    }
}

fn pending(p: model::PendingSummary) -> types::Pending {
    types::Pending {
        conversation: p.conversation,
        recipient: p.recipient,
        unread: p.unread,
        due_at: p.due_at,
    }
}

fn convert(result: Result<model::Outcome, model::Error>) -> Result<types::Outcome, types::Error> {
    match result {
        Ok(outcome) => Ok(match outcome {
            model::Outcome::Scheduled(p) => types::Outcome::Scheduled(pending(p)),
            model::Outcome::Updated(p) => types::Outcome::Updated(pending(p)),
            model::Outcome::Deferred(p, why) => types::Outcome::Deferred(types::Deferral {
                conversation: p.conversation,
                recipient: p.recipient,
                unread: p.unread,
                due_at: p.due_at,
                why: match why {
                    model::DeferReason::Cooldown => types::DeferReason::Cooldown,
                    model::DeferReason::QuietHours => types::DeferReason::QuietHours,
                },
            }),
            model::Outcome::Delivery(d) => types::Outcome::Delivery(types::Delivery {
                conversation: d.conversation,
                recipient: d.recipient,
                sid: d.sid,
                status: d.status,
                error_code: d.error_code,
                suppressed: d.suppressed,
            }),
            model::Outcome::Cancelled {
                conversation,
                recipient,
                read,
            } => types::Outcome::Cancelled(types::Cancelled {
                conversation,
                recipient,
                read,
            }),
            model::Outcome::Sent {
                conversation,
                recipient,
                sid,
                status,
                unread,
            } => types::Outcome::Sent(types::Sent {
                conversation,
                recipient,
                sid,
                status,
                unread,
            }),
            model::Outcome::Retrying {
                conversation,
                recipient,
                attempt,
                due_at,
                error,
            } => types::Outcome::Retrying(types::Retry {
                conversation,
                recipient,
                attempt,
                due_at,
                error: twilio_error(error),
            }),
            model::Outcome::Failed {
                conversation,
                recipient,
                attempts,
                error,
            } => types::Outcome::Failed(types::Failure {
                conversation,
                recipient,
                attempts,
                error: twilio_error(error),
            }),
            model::Outcome::Paused {
                conversation,
                recipient,
                until,
                error,
            } => types::Outcome::Paused(types::Pause {
                conversation,
                recipient,
                until,
                error: twilio_error(error),
            }),
            model::Outcome::Skipped(reason) => types::Outcome::Skipped(skip(reason)),
        }),
        Err(error) => Err(match error {
            model::Error::InvalidSettings(ps) => {
                types::Error::InvalidSettings(ps.into_iter().map(problem).collect())
            }
            model::Error::InvalidInput(what) => types::Error::InvalidInput(what),
            model::Error::Host(what) => types::Error::Host(what),
            model::Error::Unauthenticated(what) => types::Error::Unauthenticated(what),
        }),
    }
}

fn twilio_error(e: model::TwilioError) -> types::TwilioError {
    types::TwilioError {
        status: e.status,
        code: e.code,
        message: e.message,
    }
}

fn skip(reason: model::SkipReason) -> types::SkipReason {
    use model::SkipReason as S;
    match reason {
        S::GroupConversation => types::SkipReason::GroupConversation,
        S::NotText => types::SkipReason::NotText,
        S::SelfMessage => types::SkipReason::SelfMessage,
        S::RecipientOnline => types::SkipReason::RecipientOnline,
        S::UnknownRecipient => types::SkipReason::UnknownRecipient,
        S::NoContactNumber => types::SkipReason::NoContactNumber,
        S::InvalidContactNumber => types::SkipReason::InvalidContactNumber,
        S::NothingPending => types::SkipReason::NothingPending,
        S::UnknownTimer => types::SkipReason::UnknownTimer,
        S::ConversationDailyLimit => types::SkipReason::ConversationDailyLimit,
        S::RecipientDailyLimit => types::SkipReason::RecipientDailyLimit,
        S::OptedOut => types::SkipReason::OptedOut,
        S::UndeliverableNumber => types::SkipReason::UndeliverableNumber,
        S::UnknownSms => types::SkipReason::UnknownSms,
    }
}
