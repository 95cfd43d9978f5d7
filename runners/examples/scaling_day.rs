//! A simulated day of bursty queue load, three scaling policies on the same
//! arrivals: Mooring's (an activity window and bounded steps), a cooldown
//! timer held to the same 10-minute idle rule, and KEDA's defaults (poll 30 s,
//! cooldown 300 s). Prints one table per seed.
//!
//! `cargo run --example scaling_day -- --seed 1 [--seed 2 ...]`

use std::time::Duration;

use runners::autoscale::Policy;
use runners::autoscale::day::{CooldownTimer, DayConfig, DayPolicy, Mooring, run};

fn main() {
    let mut seeds = vec![];
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seed" => seeds.extend(args.next().and_then(|s| s.parse::<u64>().ok())),
            other => {
                eprintln!("unknown argument {other}; use --seed N (repeatable)");
                std::process::exit(2);
            }
        }
    }
    if seeds.is_empty() {
        seeds = vec![1, 2, 3];
    }
    for seed in seeds {
        let c = DayConfig { seed, ..DayConfig::default() };
        let mooring = Mooring::defaults(&c);
        let same_idle = CooldownTimer::new(c.min, c.max, c.queue_target, 30, 600);
        let keda = CooldownTimer::new(c.min, c.max, c.queue_target, 30, 300);
        // What each of Mooring's rules costs: the same decision without it.
        let no_step =
            Mooring::new(Policy { step_period: Duration::ZERO, ..mooring.policy.clone() }, 15).named("no step bound");
        let no_band = Mooring::new(Policy { tolerance: 0.0, ..mooring.policy.clone() }, 15).named("no tolerance band");
        let mut policies: Vec<Box<dyn DayPolicy>> =
            vec![Box::new(mooring), Box::new(same_idle), Box::new(keda), Box::new(no_step), Box::new(no_band)];
        println!(
            "seed {seed}: one day, {} msg/s per task, tasks start in {} s, target {} messages per replica, late after {} s",
            c.per_task_rate, c.start_delay, c.queue_target, c.late_after
        );
        println!("| policy | replica-minutes | seconds above target | late messages | scaling actions |");
        println!("| --- | --- | --- | --- | --- |");
        for p in &mut policies {
            let name = p.name();
            let r = run(&c, p.as_mut());
            println!(
                "| {name} | {:.0} | {} | {} | {} |",
                r.replica_minutes, r.seconds_above_target, r.late_messages, r.scaling_actions
            );
        }
        println!();
    }
}
