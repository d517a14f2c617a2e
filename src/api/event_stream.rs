//! `GET /api/v1/events`: Server-Sent Events for the dashboard.
//!
//! Messages: every [`EventRecord`] as a default (`message`) event whose SSE `id` is the
//! event id, so a reconnecting `EventSource` sends `Last-Event-ID` and gets what it missed
//! from the bus's ring buffer; a `snapshot` event once a second (the shared, pre-serialized
//! live payload); `hello` on connect (this process' instance id, so a client notices a
//! restart); `reset` when a resume is impossible (the ring lost events, or keel restarted)
//! and the client should refetch `/api/v1/overview`.
//!
//! Emitting never waits for a client: the bus is a broadcast channel, and a client that
//! falls behind it (lag) gets `lagged` and the stream ends. Streams also end on shutdown, so
//! an open dashboard never holds up the drain.

use super::dashboard::DashboardState;
use crate::telemetry::EventRecord;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::{broadcast, watch};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct Resume {
    /// Resume after this event id on the first connection (an `EventSource` can only send
    /// `Last-Event-ID` on reconnects); the header wins when both are present.
    after: Option<u64>,
}

/// Where a new stream starts.
#[derive(Debug)]
pub(crate) enum Start {
    /// Nothing to replay: live events only.
    Live,
    /// Replay these buffered events first.
    Replay(Vec<Arc<EventRecord>>),
    /// The client's position cannot be continued; it must refetch the overview.
    Reset(&'static str),
}

/// Decides the start from the client's last id, the buffered events after it, and the
/// newest id this process has emitted.
pub(crate) fn plan(last_id: Option<u64>, buffered: Vec<Arc<EventRecord>>, newest: u64) -> Start {
    let Some(last) = last_id else {
        return Start::Live;
    };
    if last > newest {
        return Start::Reset("keel restarted");
    }
    match buffered.first() {
        Some(first) if first.id > last + 1 => Start::Reset("events were lost"),
        _ if buffered.is_empty() => Start::Live,
        _ => Start::Replay(buffered),
    }
}

/// Event stream
///
/// Server-Sent Events: `hello` on connect (the process' instance id), every operator event
/// as a default message whose `id` is the event id (reconnects resume with
/// `Last-Event-ID`), `snapshot` once a second (the live payload), `reset` when a resume is
/// impossible (refetch the overview), `lagged` when the client fell behind (the stream
/// ends). Streams end on shutdown.
#[utoipa::path(get, path = "/api/v1/events", tag = "dashboard",
    params(Resume,
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this event id (sent by `EventSource` on reconnects).")),
    security(("admin" = []), ("session" = [])),
    responses(
        (status = 200, description = "The stream.", content_type = "text/event-stream", body = String),
        (status = 400, description = "`Last-Event-ID` or `after` is not an event id.", body = super::error::ErrorBody),
        (status = 401, description = "Admin token or session missing.", body = super::error::ErrorBody),
    ))]
pub(crate) async fn stream(
    State(state): State<DashboardState>,
    headers: HeaderMap,
    query: Result<Query<Resume>, axum::extract::rejection::QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, super::error::ApiError> {
    let Query(resume) = query?;
    let header_id = match headers.get("last-event-id") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    super::error::ApiError::bad_request("Last-Event-ID must be an event id")
                })?,
        ),
    };
    let last_id = header_id.or(resume.after);
    let bus = &state.telemetry.events;
    // Subscribe before reading the ring, so nothing falls between the two.
    let live = bus.subscribe();
    let newest = bus.recent(1).first().map(|r| r.id).unwrap_or(0);
    let start = plan(
        last_id,
        last_id.map(|id| bus.since(id)).unwrap_or_default(),
        newest,
    );

    let mut first = VecDeque::new();
    let hello = Hello {
        instance: &state.instance,
        newest_id: newest,
        version: env!("CARGO_PKG_VERSION"),
    };
    first.push_back(Msg::Control("hello", data(&hello)));
    let mut skip_upto = newest;
    match start {
        Start::Live => {}
        Start::Replay(records) => {
            for r in &records {
                skip_upto = skip_upto.max(r.id);
                first.push_back(Msg::Record(r.clone()));
            }
        }
        Start::Reset(reason) => first.push_back(Msg::Control("reset", data(&Reset { reason }))),
    }
    let mut snapshots = state.feed.subscribe();
    let current = snapshots.borrow_and_update().clone();
    first.push_back(Msg::Snapshot(current));

    let conn = Conn {
        first,
        live,
        snapshots,
        stop: state.stop.clone(),
        skip_upto,
        done: false,
    };
    let stream = futures::stream::unfold(conn, |mut c| async move {
        c.next().await.map(|m| (Ok(m.into_sse()), c))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// `hello`: which process this is (a change means keel restarted) and its newest event.
#[derive(Serialize)]
struct Hello<'a> {
    instance: &'a str,
    newest_id: u64,
    version: &'static str,
}

/// `reset`: why the client must refetch the overview.
#[derive(Serialize)]
struct Reset {
    reason: &'static str,
}

/// `lagged`: events the client fell behind by; the stream ends after it.
#[derive(Serialize)]
struct Lagged {
    missed: u64,
}

/// An SSE data line.
fn data(body: &impl Serialize) -> String {
    serde_json::to_string(body).unwrap_or_default()
}

/// One message of the stream, before it becomes SSE text.
#[derive(Debug)]
enum Msg {
    Record(Arc<EventRecord>),
    Snapshot(Arc<str>),
    Lagged(u64),
    /// A named control message (`hello`, `reset`) with its JSON data.
    Control(&'static str, String),
}

impl Msg {
    fn into_sse(self) -> SseEvent {
        match self {
            Msg::Record(r) => SseEvent::default()
                .id(r.id.to_string())
                .data(serde_json::to_string(&*r).unwrap_or_else(|_| "{}".into())),
            Msg::Snapshot(payload) => SseEvent::default().event("snapshot").data(&*payload),
            Msg::Lagged(missed) => SseEvent::default()
                .event("lagged")
                .data(data(&Lagged { missed })),
            Msg::Control(name, data) => SseEvent::default().event(name).data(data),
        }
    }
}

/// One client's position in the streams.
struct Conn {
    first: VecDeque<Msg>,
    live: broadcast::Receiver<Arc<EventRecord>>,
    snapshots: watch::Receiver<Arc<str>>,
    stop: watch::Receiver<bool>,
    /// Live events at or below this id were already sent (replay) or predate the stream.
    skip_upto: u64,
    done: bool,
}

enum Next {
    Record(Arc<EventRecord>),
    Snapshot,
    Lagged(u64),
    End,
}

impl Conn {
    async fn next(&mut self) -> Option<Msg> {
        if self.done {
            return None;
        }
        if let Some(e) = self.first.pop_front() {
            return Some(e);
        }
        loop {
            let next = tokio::select! {
                biased;
                _ = self.stop.wait_for(|stop| *stop) => Next::End,
                r = self.live.recv() => match r {
                    Ok(record) => Next::Record(record),
                    Err(broadcast::error::RecvError::Lagged(n)) => Next::Lagged(n),
                    Err(broadcast::error::RecvError::Closed) => Next::End,
                },
                changed = self.snapshots.changed() => match changed {
                    Ok(()) => Next::Snapshot,
                    Err(_) => Next::End,
                },
            };
            return match next {
                Next::Record(r) if r.id <= self.skip_upto => continue,
                Next::Record(r) => Some(Msg::Record(r)),
                Next::Snapshot => Some(Msg::Snapshot(self.snapshots.borrow_and_update().clone())),
                Next::Lagged(missed) => {
                    tracing::info!(missed, "dashboard event stream fell behind; closing it");
                    self.done = true;
                    Some(Msg::Lagged(missed))
                }
                Next::End => None,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::{Event, EventBus};
    use serde::Serialize;

    #[derive(Serialize)]
    struct Tick;
    impl Event for Tick {
        fn kind(&self) -> &'static str {
            "test.tick"
        }
        fn component(&self) -> &'static str {
            "test"
        }
        fn message(&self) -> String {
            "tick".into()
        }
    }

    fn ids(start: &Start) -> Vec<u64> {
        match start {
            Start::Replay(r) => r.iter().map(|r| r.id).collect(),
            _ => vec![],
        }
    }

    #[test]
    fn resume_plans() {
        let bus = EventBus::new(4, &prometheus::Registry::new());
        for _ in 0..6 {
            bus.emit(&Tick);
        }
        // The ring holds 3..=6.
        assert!(matches!(plan(None, vec![], 6), Start::Live));
        assert_eq!(ids(&plan(Some(4), bus.since(4), 6)), vec![5, 6]);
        assert_eq!(ids(&plan(Some(2), bus.since(2), 6)), vec![3, 4, 5, 6]);
        assert!(matches!(plan(Some(6), bus.since(6), 6), Start::Live));
        assert!(matches!(
            plan(Some(1), bus.since(1), 6),
            Start::Reset("events were lost")
        ));
        assert!(matches!(
            plan(Some(60), bus.since(60), 6),
            Start::Reset("keel restarted")
        ));
    }

    #[tokio::test]
    async fn stream_replays_then_follows_live_and_ends_on_lag_or_stop() {
        let telemetry = crate::telemetry::Telemetry::new();
        let bus = telemetry.events.clone();
        for _ in 0..3 {
            bus.emit(&Tick);
        }
        let (stop_tx, stop) = watch::channel(false);
        let snapshots = crate::telemetry::dashboard_feed::DashboardFeed::new(telemetry.clone());
        let mut c = Conn {
            first: VecDeque::new(),
            live: bus.subscribe(),
            snapshots: snapshots.subscribe(),
            stop,
            skip_upto: 3,
            done: false,
        };
        // An event that was already replayed is skipped; a new one comes through.
        bus.emit(&Tick);
        assert!(matches!(c.next().await, Some(Msg::Record(r)) if r.id == 4));
        snapshots.tick();
        assert!(matches!(c.next().await, Some(Msg::Snapshot(p)) if p.contains("\"health\"")));
        stop_tx.send_replace(true);
        assert!(c.next().await.is_none());

        // A client that never reads while more than the channel holds is emitted lags out.
        let (_keep, stop) = watch::channel(false);
        let mut slow = Conn {
            first: VecDeque::new(),
            live: bus.subscribe(),
            snapshots: snapshots.subscribe(),
            stop,
            skip_upto: 0,
            done: false,
        };
        for _ in 0..(crate::telemetry::event_bus::DEFAULT_BUFFER + 10) {
            bus.emit(&Tick);
        }
        assert!(matches!(slow.next().await, Some(Msg::Lagged(n)) if n > 0));
        assert!(slow.next().await.is_none());
    }
}
