//! Every start-up refusal reads alike (issue 27): ours and clap's, from a flag or a
//! variable, of every command: two lines (`switchboard: configuration error: <setting>:
//! <problem>`, `  fix: <what to do>`) and exit code 78 (`harness::assert_refused`).

use std::collections::HashMap;

use switchboard::cli::CliError;

use super::harness::{assert_refused, command_refused as run, serve_refused, LISTEN, SECRET};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_value_from_a_variable_is_refused_naming_the_flag_and_the_variable() {
    let (status, stderr) = serve_refused(
        &LISTEN,
        &[("JWT_HS256_SECRET", SECRET), ("QUEUE_CAPACITY", "abc")],
    );
    assert_refused(status, &stderr, "--queue-capacity (QUEUE_CAPACITY)");
    assert!(stderr.contains("\"abc\""), "the value is shown: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_flag_value_and_an_unknown_flag_are_refused() {
    let secret = [("JWT_HS256_SECRET", SECRET)];
    let (status, stderr) = serve_refused(&["--listen", "nope"], &secret);
    assert_refused(status, &stderr, "--listen (SWITCHBOARD_LISTEN)");
    let (status, stderr) = serve_refused(&["--listen", "127.0.0.1:0", "--nope"], &secret);
    assert_refused(status, &stderr, "--nope");
    // clap's suggestion becomes the fix.
    let (status, stderr) = serve_refused(&["--lisen", "127.0.0.1:0"], &secret);
    assert_refused(status, &stderr, "--lisen");
    assert!(stderr.contains("fix: use --listen"), "{stderr}");
}

#[test]
fn every_command_refuses_alike() {
    // `token` without a secret; a missing required flag; an unknown subcommand.
    let (status, stderr) = run(&["token", "--tenant", "acme", "--user", "alice"], &[]);
    assert_refused(status, &stderr, "JWT_HS256_SECRET");
    let (status, stderr) = run(&["token", "--tenant", "acme"], &[]);
    assert_refused(status, &stderr, "--user");
    let (status, stderr) = run(&["tokn"], &[]);
    assert_refused(status, &stderr, "tokn");
    let url = "http://127.0.0.1:9/v1/messages";
    let (status, stderr) = run(&["publish", "--url", url, "--tenant", "acme"], &[]);
    assert_refused(status, &stderr, "--token (SWITCHBOARD_TOKEN)");
    // Help and version are no refusals.
    for args in [&["serve", "--help"][..], &["--version"]] {
        let (status, stderr) = run(args, &[]);
        assert!(status.success(), "{args:?}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_address_in_use_is_refused_naming_the_flag() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let secret = [("JWT_HS256_SECRET", SECRET)];
    let (status, stderr) = serve_refused(
        &["--listen", &addr, "--management-listen", "127.0.0.1:0"],
        &secret,
    );
    assert_refused(status, &stderr, "--listen (SWITCHBOARD_LISTEN)");
    assert!(stderr.contains("fix: choose a free port, or 0"), "{stderr}");
    let (status, stderr) = serve_refused(
        &["--listen", "127.0.0.1:0", "--management-listen", &addr],
        &secret,
    );
    assert_refused(
        status,
        &stderr,
        "--management-listen (SWITCHBOARD_MANAGEMENT_LISTEN)",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_started_in_process_refuses_with_the_same_refusal() {
    let vars = HashMap::from([
        ("JWT_HS256_SECRET".to_string(), SECRET.to_string()),
        ("QUEUE_CAPACITY".to_string(), "abc".to_string()),
    ]);
    let error = switchboard::cli::serve::start_in_process(&LISTEN, vars)
        .await
        .err()
        .expect("refused");
    let CliError::Config(refusal) = error else {
        panic!("not a refusal: {error}");
    };
    assert_eq!(refusal.setting, "--queue-capacity (QUEUE_CAPACITY)");
    assert!(refusal.problem.contains("\"abc\""), "{refusal}");
}

/// README.md's sample refusal is what the binary prints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_sample_refusal_is_what_serve_prints() {
    let (status, stderr) = serve_refused(
        &LISTEN,
        &[("JWT_HS256_SECRET", SECRET), ("RECEIPT_TTL_SECS", "a day")],
    );
    assert_refused(status, &stderr, "RECEIPT_TTL_SECS");
    let lines: Vec<&str> = stderr.trim_end().lines().collect();
    let printed = lines[lines.len() - 2..].join("\n");
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    assert!(
        readme.contains(&printed),
        "README.md's sample refusal differs from:\n{printed}"
    );
}
