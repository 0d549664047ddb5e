//! `--metrics ADDR`: an OpenMetrics endpoint for Prometheus. prometheus-client
//! keeps and encodes the metrics; hyper serves `GET /metrics`.

use std::{
    convert::Infallible,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::{Arc, Mutex},
    time::Duration,
};

use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode, body::Bytes, header, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::{
    encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet, text::encode},
    metrics::{MetricType, counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};
use tokio::{net::TcpListener, sync::Semaphore};

use crate::{model::report::ParentGroup, stats::Log2Hist};

const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Scrapers served at once.
const MAX_CLIENTS: usize = 16;
/// How long one scrape may take, request to response.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of a request read (hyper's smallest buffer): a scrape's
/// request line and headers fit many times over.
const MAX_REQUEST_BYTES: usize = 8192;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ParentLabel {
    parent_comm: String,
}

/// Upper bounds of the exposed buckets: 2^10 ns (about 1 µs) to 2^45 ns
/// (about 9.8 hours), doubling; shorter times fall in the first, longer
/// ones only in `+Inf`.
const FIRST_BOUND_LOG2: u32 = 10;
const LAST_BOUND_LOG2: u32 = 45;

/// Exit-to-reap times as a histogram metric, from the log2 histogram the
/// session keeps (with the kernel's): the same buckets, no second copy of
/// every observation.
#[derive(Clone, Debug, Default)]
struct ReapLatency(Arc<Mutex<Log2Hist>>);

impl EncodeMetric for ReapLatency {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let hist = self.0.lock().map_err(|_| std::fmt::Error)?.clone();
        let mut buckets = Vec::with_capacity((LAST_BOUND_LOG2 - FIRST_BOUND_LOG2 + 2) as usize);
        let mut below = 0;
        for (upper, n) in hist.buckets() {
            if upper <= 1 << LAST_BOUND_LOG2 {
                below += n;
                if upper >= 1 << FIRST_BOUND_LOG2 {
                    buckets.push((upper as f64 / 1e9, below));
                    below = 0;
                }
            }
        }
        buckets.push((
            f64::INFINITY,
            hist.count() - buckets.iter().map(|b| b.1).sum::<u64>(),
        ));
        encoder.encode_histogram::<NoLabelSet>(
            hist.sum() as f64 / 1e9,
            hist.count(),
            &buckets,
            None,
        )
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// The metrics, updated by the session and read by the endpoint.
pub struct Metrics {
    exits: Counter,
    reaps: Counter,
    lost: Counter,
    zombies: Family<ParentLabel, Gauge>,
    zombie_age: ReapLatency,
    registry: Arc<Registry>,
    /// What the counters were last set to, to add only the difference.
    published: (u64, u64, u64),
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let exits = Counter::default();
        let reaps = Counter::default();
        let lost = Counter::default();
        let zombies = Family::<ParentLabel, Gauge>::default();
        let zombie_age = ReapLatency::default();
        let mut registry = Registry::default();
        registry.register(
            "zombie_trace_exits",
            "Processes that exited (whole thread groups)",
            exits.clone(),
        );
        registry.register(
            "zombie_trace_reaps",
            "Processes that were reaped (released)",
            reaps.clone(),
        );
        registry.register(
            "zombie_trace_zombies",
            "Zombies reported and not yet reaped, by their parent's name",
            zombies.clone(),
        );
        registry.register(
            "zombie_trace_zombie_age_seconds",
            "Time from a child's exit to its reap",
            zombie_age.clone(),
        );
        registry.register(
            "zombie_trace_lost_events",
            "Kernel records dropped because the ring buffer was full",
            lost.clone(),
        );
        Self {
            exits,
            reaps,
            lost,
            zombies,
            zombie_age,
            registry: Arc::new(registry),
            published: (0, 0, 0),
        }
    }

    /// Sets the counters to these totals (they only ever grow).
    pub fn set_totals(&mut self, exits: u64, reaps: u64, lost: u64) {
        let (e, r, l) = self.published;
        self.exits.inc_by(exits.saturating_sub(e));
        self.reaps.inc_by(reaps.saturating_sub(r));
        self.lost.inc_by(lost.saturating_sub(l));
        self.published = (exits.max(e), reaps.max(r), lost.max(l));
    }

    /// The zombies outstanding now, by parent.
    pub fn set_zombies(&self, groups: &[ParentGroup]) {
        self.zombies.clear();
        for g in groups {
            let label = ParentLabel {
                parent_comm: String::from_utf8_lossy(&g.parent_comm).into_owned(),
            };
            self.zombies
                .get_or_create(&label)
                .inc_by(g.zombies.len() as i64);
        }
    }

    /// Every exit-to-reap time so far.
    pub fn set_reap_latency(&self, hist: Log2Hist) {
        if let Ok(mut shown) = self.zombie_age.0.lock() {
            *shown = hist;
        }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    /// Serves `GET /metrics` on `listener` until the task is dropped.
    pub fn serve(&self, listener: TcpListener) -> impl Future<Output = ()> + use<> {
        let registry = Arc::clone(&self.registry);
        // A few scrapers at a time, each briefly: idle or slow clients must
        // not pile up and take the descriptors the tracer needs.
        let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
        async move {
            loop {
                let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                    return;
                };
                let stream = match listener.accept().await {
                    Ok((stream, _)) => stream,
                    Err(_) => {
                        // Out of descriptors, say: do not spin.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let registry = Arc::clone(&registry);
                tokio::spawn(async move {
                    let service = service_fn(move |req| respond(req, Arc::clone(&registry)));
                    let mut http = hyper::server::conn::http1::Builder::new();
                    http.timer(TokioTimer::new())
                        .header_read_timeout(CLIENT_TIMEOUT)
                        .max_buf_size(MAX_REQUEST_BYTES)
                        .keep_alive(false);
                    // A client that goes away or dawdles is its business.
                    let _ = tokio::time::timeout(
                        CLIENT_TIMEOUT,
                        http.serve_connection(TokioIo::new(stream), service),
                    )
                    .await;
                    drop(slot);
                });
            }
        }
    }
}

async fn respond<B>(
    req: Request<B>,
    registry: Arc<Registry>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let plain = |status, text: &'static str| {
        Response::builder()
            .status(status)
            .body(Full::new(Bytes::from_static(text.as_bytes())))
    };
    // Only reading: the body of any request is never read.
    let response = if req.uri().path() != "/metrics" {
        plain(StatusCode::NOT_FOUND, "zombie-trace serves /metrics\n")
    } else if req.method() != Method::GET && req.method() != Method::HEAD {
        plain(StatusCode::METHOD_NOT_ALLOWED, "GET /metrics only\n").map(|mut r| {
            r.headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
            r
        })
    } else {
        let mut body = String::new();
        let _ = encode(&mut body, &registry);
        Response::builder()
            .header(header::CONTENT_TYPE, CONTENT_TYPE)
            .body(Full::new(Bytes::from(body)))
    };
    Ok(response.unwrap_or_default())
}

/// `--metrics` values: `9090` or `:9090` (loopback), `0.0.0.0:9090`,
/// `[::1]:9090`.
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    let port_only = s.strip_prefix(':').unwrap_or(s);
    let addr = match port_only.parse::<u16>() {
        Ok(port) => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
        Err(_) => s.parse().map_err(|_| {
            "give a port (9090, bound on loopback) or an address and port (0.0.0.0:9090, \
             [::1]:9090)"
                .to_owned()
        })?,
    };
    if addr.port() == 0 {
        return Err("give a port other than 0: scrapers must know where to look".into());
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let lo = |port| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
        assert_eq!(parse_addr("9090"), Ok(lo(9090)));
        assert_eq!(parse_addr(":9090"), Ok(lo(9090)));
        assert_eq!(
            parse_addr("0.0.0.0:9100"),
            Ok("0.0.0.0:9100".parse().unwrap())
        );
        assert_eq!(parse_addr("[::1]:9100"), Ok("[::1]:9100".parse().unwrap()));
        for bad in [
            "",
            "localhost",
            "99999",
            "1.2.3.4",
            ":x",
            "0",
            "127.0.0.1:0",
        ] {
            assert!(parse_addr(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn exposition_has_the_promised_names() {
        let mut m = Metrics::new();
        m.set_totals(10, 8, 2);
        m.set_totals(12, 9, 2);
        m.set_zombies(&[ParentGroup {
            ppid: 7,
            parent_comm: b"leaker".to_vec(),
            zombies: vec![1, 2],
            oldest_ns: None,
        }]);
        let mut hist = Log2Hist::default();
        hist.record(1_500_000_000);
        hist.record(500);
        hist.record(u64::MAX);
        m.set_reap_latency(hist);
        let text = m.encode();
        for line in [
            "zombie_trace_exits_total 12",
            "zombie_trace_reaps_total 9",
            "zombie_trace_lost_events_total 2",
            "zombie_trace_zombies{parent_comm=\"leaker\"} 2",
            "zombie_trace_zombie_age_seconds_count 3",
            // 500 ns, in the first bucket; 1.5 s below 2^31 ns.
            "zombie_trace_zombie_age_seconds_bucket{le=\"0.000001024\"} 1",
            "zombie_trace_zombie_age_seconds_bucket{le=\"1.073741824\"} 1",
            "zombie_trace_zombie_age_seconds_bucket{le=\"2.147483648\"} 2",
            "zombie_trace_zombie_age_seconds_bucket{le=\"+Inf\"} 3",
            "# EOF",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
        m.set_zombies(&[]);
        assert!(
            !m.encode().contains("leaker"),
            "a parent without zombies goes"
        );
    }
}
