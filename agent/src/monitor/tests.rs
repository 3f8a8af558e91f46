use std::time::Duration;

use tracing::Level;
use tracing_subscriber::layer::SubscriberExt;

use super::*;

fn with_stream(test: impl FnOnce(&LogStream)) {
    let stream = LogStream::default();
    let subscriber = tracing_subscriber::registry().with(stream.layer().filtered());
    tracing::subscriber::with_default(subscriber, || test(&stream));
}

async fn next_line(sub: &mut Subscription) -> Arc<LogLine> {
    match tokio::time::timeout(Duration::from_secs(1), sub.next()).await {
        Ok(Next::Line(line)) => line,
        other => panic!("expected a line, got {other:?}"),
    }
}

#[test]
fn a_monitor_gets_lines_at_its_level_in_both_renderings() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    with_stream(|stream| {
        tracing::info!("before anyone listens");
        let mut info = stream.subscribe(Level::INFO);
        tracing::debug!("too verbose for it");
        tracing::info!(service = "web", port = 80, "Synced service");
        let line = runtime.block_on(next_line(&mut info));
        assert!(
            line.text.ends_with(
                "[INFO]  shoal_agent.monitor.tests: Synced service: service=web port=80"
            ),
            "{}",
            line.text
        );
        let json: serde_json::Value = serde_json::from_str(&line.json).unwrap();
        assert_eq!(json["@level"], "info");
        assert_eq!(json["@message"], "Synced service");
        assert_eq!(json["@module"], "shoal_agent.monitor.tests");
        assert_eq!(json["port"], 80);

        let mut debug = stream.subscribe(Level::DEBUG);
        tracing::debug!("now wanted");
        assert!(runtime
            .block_on(next_line(&mut debug))
            .json
            .contains("now wanted"));
        drop(debug);
        tracing::debug!("no longer wanted");
        tracing::warn!("still wanted");
        assert!(runtime
            .block_on(next_line(&mut info))
            .text
            .contains("still wanted"));
    });
}

#[test]
fn a_slow_monitor_loses_the_oldest_lines_and_is_told() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    with_stream(|stream| {
        let mut sub = stream.subscribe(Level::INFO);
        for i in 0..BUFFER + 10 {
            tracing::info!(i, "line");
        }
        match runtime.block_on(sub.next()) {
            Next::Dropped(n) => assert_eq!(n, 10),
            other => panic!("expected dropped lines, got {other:?}"),
        }
        assert_eq!(stream.dropped(), 10);
        match runtime.block_on(sub.next()) {
            Next::Line(line) => assert!(line.text.ends_with("i=10"), "{}", line.text),
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn levels_are_read_as_consul_names_them() {
    assert_eq!(parse_level("DEBUG"), Some(Level::DEBUG));
    assert_eq!(parse_level("warn"), Some(Level::WARN));
    assert_eq!(parse_level("err"), Some(Level::ERROR));
    assert_eq!(parse_level("loud"), None);
}
