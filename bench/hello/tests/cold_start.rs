//! The stand-in drives a real `lambda_runtime` binary (the hello-world one) as Lambda would: a cold
//! start answers, its init is part of it, and a warm process keeps answering.

use std::time::Duration;

use portcullis_bench::function::{Bytes, Expect, Function};

fn hello() -> Function {
    Function {
        name: "hello".into(),
        binary: env!("CARGO_BIN_EXE_hello").into(),
        env: vec![],
        event: Bytes::from_static(br#"{"hello":"test"}"#),
        expect: Expect::Json,
    }
}

#[tokio::test]
async fn a_cold_start_is_timed_from_process_start_to_the_first_answer() {
    let start = hello().cold_start().await.expect("hello answers");
    assert!(start.init > Duration::ZERO && start.init <= start.total, "{start:?}");
}

#[tokio::test]
async fn a_warm_process_answers_again_and_reports_its_peak_memory() {
    let f = hello();
    let (running, _) = f.start().await.expect("started");
    for _ in 0..3 {
        running.invoke(f.event.clone()).await.expect("an answer");
    }
    assert!(running.peak_rss_bytes().is_some_and(|bytes| bytes > 0));
    running.stop().await;
}

#[tokio::test]
async fn a_wrong_answer_is_an_error_not_a_fast_sample() {
    let f = Function { expect: Expect::Ok200, ..hello() };
    let err = f.cold_start().await.unwrap_err();
    assert!(err.contains("unexpected answer"), "{err}");
}
