//! Adds entries to a Redis stream, for `redis_worker` processes to share.
//!
//! ```sh
//! cargo run --example redis_producer --features redis -- \
//!     --url redis://127.0.0.1/ --stream jobs --count 2000
//! ```
//!
//! Each entry has one field, `payload` (its number). The entries go in
//! pipelines of 500, and the producer prints how many it added and the
//! stream's length after.

use redis::AsyncCommands;

struct Args {
    url: String,
    stream: String,
    count: usize,
}

fn args() -> Args {
    let mut args = Args {
        url: "redis://127.0.0.1/".into(),
        stream: "jobs".into(),
        count: 1000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => args.url = value(),
            "--stream" => args.stream = value(),
            "--count" => args.count = value().parse().expect("--count N"),
            other => panic!("unknown argument {other}; see the example's docs"),
        }
    }
    args
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = args();
    let client = redis::Client::open(args.url.as_str())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let mut next = 0;
    while next < args.count {
        let end = (next + 500).min(args.count);
        let mut pipe = redis::pipe();
        for i in next..end {
            pipe.xadd(&args.stream, "*", &[("payload", i.to_string())])
                .ignore();
        }
        let () = pipe.query_async(&mut conn).await?;
        next = end;
    }
    let len: usize = conn.xlen(&args.stream).await?;
    println!(
        "added {} entries to {} (length now {len})",
        args.count, args.stream
    );
    Ok(())
}
