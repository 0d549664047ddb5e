//! `--metrics ADDR`: an OpenMetrics endpoint for Prometheus. prometheus-client
//! keeps and encodes the metrics; hyper serves `GET /metrics` and `GET
//! /healthz`.
//!
//! Zombies are labelled by workload (`namespace`, `pod`, `container`, from
//! the container runtime's files, and `parent_comm`). Cardinality is
//! bounded: each family keeps at most [`MAX_SERIES`] label sets, and counts
//! the rest under one set whose labels are all `_other`; a workload's
//! counter goes once it has reported nothing for [`IDLE_SERIES`] and has no
//! zombie left, so that pods that come and go for a week do not fill it.

use std::{
    collections::{HashMap, HashSet},
    convert::Infallible,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
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

use crate::{
    model::{
        event::Command,
        report::{ParentGroup, Zombie},
    },
    stats::Log2Hist,
};

const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Scrapers served at once.
const MAX_CLIENTS: usize = 16;
/// How long one scrape may take, request to response.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of a request read (hyper's smallest buffer): a scrape's
/// request line and headers fit many times over.
const MAX_REQUEST_BYTES: usize = 8192;

/// Label sets a family keeps at most.
pub const MAX_SERIES: usize = 1000;
/// How long a workload's counter stays without a report (`rate()` over
/// less than this sees no gap; a series that comes back starts again from
/// its first report, which `rate()` takes as a reset).
pub const IDLE_SERIES: Duration = Duration::from_secs(3600);
/// The label value of the set that counts the rest.
const OTHER: &str = "_other";

/// The workload a zombie belongs to: its container (empty strings when it
/// is in none) and its parent's name.
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Workload {
    namespace: String,
    pod: String,
    container: String,
    parent_comm: String,
}

impl Workload {
    /// Zombie `z`'s: its own container, else its parent's.
    pub fn of(z: &Zombie) -> Self {
        let parent = z.parent.as_ref().map(|p| &p.placement);
        let pick = |own: Option<&String>, parents: Option<&String>| {
            label(own.or(parents).map_or("", String::as_str))
        };
        let own = &z.placement;
        Self {
            namespace: pick(
                own.names.pod_namespace.as_ref(),
                parent.and_then(|p| p.names.pod_namespace.as_ref()),
            ),
            pod: pick(
                own.names.pod_name.as_ref(),
                parent.and_then(|p| p.names.pod_name.as_ref()),
            ),
            container: pick(
                own.names.name.as_ref().or(own.container_id.as_ref()),
                parent.and_then(|p| p.names.name.as_ref().or(p.container_id.as_ref())),
            ),
            parent_comm: label(
                &z.parent
                    .as_ref()
                    .map(|p| String::from_utf8_lossy(&p.comm).into_owned())
                    .unwrap_or_default(),
            ),
        }
    }

    fn other() -> Self {
        Self {
            namespace: OTHER.into(),
            pod: OTHER.into(),
            container: OTHER.into(),
            parent_comm: OTHER.into(),
        }
    }
}

/// A label value: control characters (a process names itself) shown as
/// `\xNN`, and at most 253 characters (a pod name's most). The encoder
/// escapes `\`, `"` and newlines itself.
fn label(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars().take(253) {
        if c.is_control() {
            out.push_str(&format!("\\x{:02x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// Which of a parent's commands leaks: its name and the child's command
/// (see `Command::name`, the child's own name when it is not known).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ByCommand {
    parent_comm: String,
    command: String,
}

impl ByCommand {
    fn of(z: &Zombie) -> Self {
        let parent = z.parent.as_ref().map_or(&[][..], |p| &p.comm[..]);
        let command = z
            .command
            .as_deref()
            .map_or(z.comm.as_bytes(), Command::name);
        Self {
            parent_comm: label(&String::from_utf8_lossy(parent)),
            command: label(&String::from_utf8_lossy(command)),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
    commit: String,
    kernel: String,
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
    zombies: Family<Workload, Gauge>,
    oldest: Family<Workload, Gauge<f64, AtomicU64>>,
    reported: Family<Workload, Counter>,
    /// The label sets `reported` has, and when each last counted.
    reported_sets: HashMap<Workload, Instant>,
    /// Zombies reported by parent's name and child's command, and when
    /// each label set last counted.
    by_command: Family<ByCommand, Counter>,
    by_command_sets: HashMap<ByCommand, Instant>,
    /// Each parent's workload, from its last zombie reported: the
    /// outstanding zombies are counted by parent.
    workloads: HashMap<u32, Workload>,
    zombie_age: ReapLatency,
    wait_tracing: Gauge,
    ready: Arc<AtomicBool>,
    registry: Arc<Registry>,
    /// What the counters were last set to, to add only the difference.
    published: (u64, u64, u64),
}

impl Metrics {
    /// The metrics of a tracer built from `commit`, on `kernel`.
    pub fn new(kernel: &str) -> Self {
        let exits = Counter::default();
        let reaps = Counter::default();
        let lost = Counter::default();
        let zombies = Family::<Workload, Gauge>::default();
        let oldest = Family::<Workload, Gauge<f64, AtomicU64>>::default();
        let reported = Family::<Workload, Counter>::default();
        let by_command = Family::<ByCommand, Counter>::default();
        let zombie_age = ReapLatency::default();
        let wait_tracing = Gauge::default();
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                commit: env!("ZOMBIE_TRACE_COMMIT").to_owned(),
                kernel: label(kernel),
            })
            .set(1);
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
            "Zombies reported and not yet reaped, by workload (container and parent's name)",
            zombies.clone(),
        );
        registry.register(
            "zombie_trace_zombies_reported",
            "Zombies reported, by workload: its rate is the leak rate",
            reported.clone(),
        );
        registry.register(
            "zombie_trace_zombies_reported_by_command",
            "Zombies reported, by the parent's name and the child's command: which of a parent's \
             commands leaks",
            by_command.clone(),
        );
        registry.register(
            "zombie_trace_oldest_zombie_seconds",
            "Age of the oldest zombie reported and not yet reaped, by workload",
            oldest.clone(),
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
        registry.register(
            "zombie_trace_wait_tracing",
            "1 when wait4/waitid calls are traced, 0 when not (no tracefs)",
            wait_tracing.clone(),
        );
        registry.register(
            "zombie_trace_build_info",
            "The tracer's version and commit, and the kernel it runs on",
            build,
        );
        Self {
            exits,
            reaps,
            lost,
            zombies,
            oldest,
            reported,
            reported_sets: HashMap::new(),
            by_command,
            by_command_sets: HashMap::new(),
            workloads: HashMap::new(),
            zombie_age,
            wait_tracing,
            ready: Arc::default(),
            registry: Arc::new(registry),
            published: (0, 0, 0),
        }
    }

    /// The probes are attached: `/healthz` says so from now on.
    pub fn set_ready(&self, wait_tracing: bool) {
        self.wait_tracing.set(i64::from(wait_tracing));
        self.ready.store(true, Ordering::Relaxed);
    }

    /// Sets the counters to these totals (they only ever grow).
    pub fn set_totals(&mut self, exits: u64, reaps: u64, lost: u64) {
        let (e, r, l) = self.published;
        self.exits.inc_by(exits.saturating_sub(e));
        self.reaps.inc_by(reaps.saturating_sub(r));
        self.lost.inc_by(lost.saturating_sub(l));
        self.published = (exits.max(e), reaps.max(r), lost.max(l));
    }

    /// A zombie was reported.
    pub fn reported(&mut self, z: &Zombie) {
        let workload = Workload::of(z);
        let counted = if self.reported_sets.contains_key(&workload)
            || self.reported_sets.len() < MAX_SERIES
        {
            workload.clone()
        } else {
            Workload::other()
        };
        self.reported_sets.insert(counted.clone(), Instant::now());
        self.reported.get_or_create(&counted).inc();
        self.workloads.insert(z.ppid, workload);
        let by = ByCommand::of(z);
        let by =
            if self.by_command_sets.contains_key(&by) || self.by_command_sets.len() < MAX_SERIES {
                by
            } else {
                ByCommand {
                    parent_comm: OTHER.into(),
                    command: OTHER.into(),
                }
            };
        self.by_command_sets.insert(by.clone(), Instant::now());
        self.by_command.get_or_create(&by).inc();
    }

    /// The zombies outstanding now, by parent, `tracing_ns` after tracing
    /// began: a zombie from before then is at least that old.
    pub fn set_zombies(&mut self, groups: &[ParentGroup], tracing_ns: u64) {
        let parents: HashSet<u32> = groups.iter().map(|g| g.ppid).collect();
        self.workloads.retain(|ppid, _| parents.contains(ppid));
        let mut count: HashMap<Workload, (i64, f64)> = HashMap::new();
        for g in groups {
            let workload = self
                .workloads
                .get(&g.ppid)
                .cloned()
                .unwrap_or_else(|| Workload {
                    parent_comm: label(&String::from_utf8_lossy(&g.parent_comm)),
                    ..Workload::default()
                });
            let key = if count.contains_key(&workload) || count.len() < MAX_SERIES {
                workload
            } else {
                Workload::other()
            };
            let entry = count.entry(key).or_default();
            entry.0 += i64::try_from(g.zombies.len()).unwrap_or(i64::MAX);
            let oldest_ns =
                g.oldest_ns
                    .unwrap_or(0)
                    .max(if g.preexisting { tracing_ns } else { 0 });
            entry.1 = entry.1.max(oldest_ns as f64 / 1e9);
        }
        let by_command = &self.by_command;
        self.by_command_sets.retain(|by, last| {
            let keep = last.elapsed() < IDLE_SERIES;
            if !keep {
                by_command.remove(by);
            }
            keep
        });
        let reported = &self.reported;
        self.reported_sets.retain(|workload, last| {
            let keep = last.elapsed() < IDLE_SERIES || count.contains_key(workload);
            if !keep {
                reported.remove(workload);
            }
            keep
        });
        self.zombies.clear();
        self.oldest.clear();
        for (workload, (n, oldest)) in count {
            self.zombies.get_or_create(&workload).set(n);
            self.oldest.get_or_create(&workload).set(oldest);
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

    /// Serves `GET /metrics` and `GET /healthz` on `listener` until the
    /// task is dropped.
    pub fn serve(&self, listener: TcpListener) -> impl Future<Output = ()> + use<> {
        let registry = Arc::clone(&self.registry);
        let ready = Arc::clone(&self.ready);
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
                let ready = Arc::clone(&ready);
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        respond(req, Arc::clone(&registry), ready.load(Ordering::Relaxed))
                    });
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
    ready: bool,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let plain = |status, text: &'static str| {
        Response::builder()
            .status(status)
            .body(Full::new(Bytes::from_static(text.as_bytes())))
    };
    let path = req.uri().path();
    // Only reading: the body of any request is never read.
    let response = if path != "/metrics" && path != "/healthz" {
        plain(
            StatusCode::NOT_FOUND,
            "zombie-trace serves /metrics and /healthz\n",
        )
    } else if req.method() != Method::GET && req.method() != Method::HEAD {
        plain(StatusCode::METHOD_NOT_ALLOWED, "GET or HEAD only\n").map(|mut r| {
            r.headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
            r
        })
    } else if path == "/healthz" {
        // Ready once every probe is attached; until then the loader is at
        // work (a readiness probe waits).
        if ready {
            plain(StatusCode::OK, "ok\n")
        } else {
            plain(StatusCode::SERVICE_UNAVAILABLE, "attaching the probes\n")
        }
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
    use crate::model::{
        fixtures::zombie,
        process::{ContainerNames, ProcessInfo},
    };

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
        let mut m = Metrics::new("6.1.0-test");
        m.set_totals(10, 8, 2);
        m.set_totals(12, 9, 2);
        let mut z = zombie(
            b"worker",
            Some(ProcessInfo {
                comm: b"leaker".to_vec(),
                ..ProcessInfo::default()
            }),
        );
        z.placement.names = ContainerNames {
            name: Some("app".into()),
            pod_name: Some("web-1".into()),
            pod_namespace: Some("shop".into()),
        };
        m.reported(&z);
        m.reported(&z);
        m.set_zombies(
            &[ParentGroup {
                by_command: Vec::new(),
                ppid: z.ppid,
                parent_comm: b"leaker".to_vec(),
                zombies: vec![1, 2],
                oldest_ns: Some(1_500_000_000),
                preexisting: false,
            }],
            0,
        );
        let mut hist = Log2Hist::default();
        hist.record(1_500_000_000);
        hist.record(500);
        hist.record(u64::MAX);
        m.set_reap_latency(hist);
        m.set_ready(true);
        let text = m.encode();
        let workload = r#"{namespace="shop",pod="web-1",container="app",parent_comm="leaker"}"#;
        let build = format!(
            "zombie_trace_build_info{{version=\"{}\",commit=\"{}\",kernel=\"6.1.0-test\"}} 1",
            env!("CARGO_PKG_VERSION"),
            env!("ZOMBIE_TRACE_COMMIT")
        );
        for line in [
            r#"zombie_trace_zombies_reported_by_command_total{parent_comm="leaker",command="worker"} 2"#,
            "zombie_trace_exits_total 12",
            "zombie_trace_reaps_total 9",
            "zombie_trace_lost_events_total 2",
            &format!("zombie_trace_zombies{workload} 2"),
            &format!("zombie_trace_zombies_reported_total{workload} 2"),
            &format!("zombie_trace_oldest_zombie_seconds{workload} 1.5"),
            "zombie_trace_wait_tracing 1",
            &build,
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
        m.set_zombies(&[], 0);
        let text = m.encode();
        assert!(
            !text.contains("zombie_trace_zombies{"),
            "a workload without zombies goes:\n{text}"
        );
        assert!(
            text.contains(&format!("zombie_trace_zombies_reported_total{workload} 2")),
            "a counter stays"
        );
    }

    #[test]
    fn labels_are_bounded_and_escaped() {
        let parent = |comm: &[u8]| {
            Some(ProcessInfo {
                comm: comm.to_vec(),
                ..ProcessInfo::default()
            })
        };
        let mut m = Metrics::new("6.1");
        for i in 0..MAX_SERIES + 5 {
            let mut z = zombie(b"w", parent(format!("p{i}").as_bytes()));
            z.ppid = u32::try_from(i).unwrap();
            m.reported(&z);
        }
        let text = m.encode();
        let series = text
            .lines()
            .filter(|l| l.starts_with("zombie_trace_zombies_reported_total{"))
            .count();
        assert_eq!(series, MAX_SERIES + 1, "{MAX_SERIES} sets and `_other`");
        assert!(text.contains(
            r#"zombie_trace_zombies_reported_total{namespace="_other",pod="_other",container="_other",parent_comm="_other"} 5"#
        ));

        let mut m = Metrics::new("6.1");
        m.reported(&zombie(b"w", parent(b"a\"b\\c\nd\x1be\xff")));
        let text = m.encode();
        assert!(
            text.contains("parent_comm=\"a\\\"b\\\\c\\\\x0ad\\\\x1be\u{fffd}\""),
            "{text}"
        );
        assert!(!text.contains('\x1b'));
    }
}
