//! The tracing side of [`LogStream`]: a per-layer filter (so it never hides events from
//! the console output) and the formatting of an event into Consul-style lines.

use std::fmt::{self, Write as _};

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Filter, Layer};

use super::{LogLine, LogStream};

/// Formats events for the monitors; see [`LogStream::layer`].
pub struct MonitorLayer {
    stream: LogStream,
}

impl MonitorLayer {
    pub(super) fn new(stream: LogStream) -> MonitorLayer {
        MonitorLayer { stream }
    }

    /// The layer with its filter, ready for `registry().with(...)`.
    pub fn filtered<S>(self) -> impl Layer<S>
    where
        S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        let filter = MonitorFilter {
            stream: self.stream.clone(),
        };
        self.with_filter(filter)
    }
}

/// Lets through what some connected monitor wants. Raft's internals stay at `warn` as
/// on the console (`openraft=warn`): at `debug` they would drown everything else.
struct MonitorFilter {
    stream: LogStream,
}

impl MonitorFilter {
    fn wants(&self, meta: &Metadata<'_>) -> bool {
        let level = *meta.level();
        if meta.target().starts_with("openraft") && level > tracing::Level::WARN {
            return false;
        }
        self.stream.wants(level)
    }
}

impl<S> Filter<S> for MonitorFilter {
    fn enabled(&self, meta: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        self.wants(meta)
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        // Rebuilt whenever the wanted level changes (`LogStream::change_wanted`).
        if self.wants(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        use tracing::level_filters::LevelFilter;
        Some(
            match self
                .stream
                .0
                .max_rank
                .load(std::sync::atomic::Ordering::Relaxed)
            {
                0 => LevelFilter::OFF,
                1 => LevelFilter::ERROR,
                2 => LevelFilter::WARN,
                3 => LevelFilter::INFO,
                4 => LevelFilter::DEBUG,
                _ => LevelFilter::TRACE,
            },
        )
    }
}

impl<S: Subscriber> Layer<S> for MonitorLayer {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let now = time::OffsetDateTime::now_utc();
        let timestamp = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second(),
            now.millisecond()
        );
        let module = meta.target().replace("::", ".");
        // hclog's layout: the bracketed level padded to 7, as `[INFO]  agent: ...`.
        let bracket = format!("[{}]", meta.level().as_str());
        let mut text = format!("{timestamp} {bracket:<7} {module}: {}", fields.message);
        if !fields.rest.is_empty() {
            text.push(':');
            for (key, value) in &fields.rest {
                let _ = write!(text, " {key}={}", value_text(value));
            }
        }
        let mut json = Map::new();
        json.insert(
            "@level".into(),
            Value::String(meta.level().as_str().to_ascii_lowercase()),
        );
        json.insert("@message".into(), Value::String(fields.message));
        json.insert("@module".into(), Value::String(module));
        json.insert("@timestamp".into(), Value::String(timestamp));
        json.extend(fields.rest.iter().cloned());
        self.stream.publish(LogLine {
            level: *meta.level(),
            text,
            json: Value::Object(json).to_string(),
        });
    }
}

fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) if !s.contains(' ') => s.clone(),
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

/// An event's message and other fields.
#[derive(Default)]
struct Fields {
    message: String,
    /// In the order the event gives them.
    rest: Vec<(String, Value)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.rest
                .push((field.name().to_string(), Value::String(value.to_string())));
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.rest
            .push((field.name().to_string(), Value::Bool(value)));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.rest.push((field.name().to_string(), value.into()));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.rest.push((field.name().to_string(), value.into()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}
