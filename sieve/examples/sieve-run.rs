//! Runs a script on a message and prints the outcome:
//! `cargo run -p tern-sieve --example sieve-run -- SCRIPT MESSAGE FROM TO`.

use tern_sieve::{Context, Envelope, NoEnvironment, compile, run};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [script, message, from, to] = args.as_slice() else {
        return Err("usage: sieve-run SCRIPT MESSAGE FROM TO".into());
    };
    let script = compile(&std::fs::read_to_string(script)?)?;
    let env = Envelope {
        from: from.clone(),
        to: to.clone(),
    };
    let out = run(
        &script,
        &std::fs::read(message)?,
        &Context::new(to, env.clone()),
        &NoEnvironment,
    );
    for a in &out.actions {
        println!("{a:?}");
    }
    println!(
        "implicit keep: {} {:?} error: {:?}",
        out.implicit_keep, out.implicit_flags, out.error
    );
    Ok(())
}
