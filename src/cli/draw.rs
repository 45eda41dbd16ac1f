//! Progress drawing, the same for every job: a bar on a terminal, a line every 5 s otherwise,
//! from any [`Observe`] the job updates. The drawer only reads counters, on its own thread.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use exhibit::progress::Observe;

/// Runs `job` with a fresh `P` for its progress, drawn while it runs when `show`; the drawing
/// stops (and a bar is cleared) before this returns, so the report prints on a clean line.
pub fn with_progress<P, R>(show: bool, job: impl FnOnce(&P) -> R) -> R
where
    P: Observe + Default + 'static,
{
    let progress = Arc::new(P::default());
    let drawn = vec![(String::new(), Arc::clone(&progress) as Arc<dyn Observe>)];
    with_progress_of(show, drawn, || job(&progress))
}

/// Runs `work` while the labelled counters are drawn when `show`: a bar each on a terminal
/// (`exhibit batch`: one per drive), otherwise a line each every 5 s, starting with its label.
pub fn with_progress_of<R>(
    show: bool,
    jobs: Vec<(String, Arc<dyn Observe>)>,
    work: impl FnOnce() -> R,
) -> R {
    let drawer = show.then(|| Drawer::start(jobs));
    let result = work();
    drop(drawer);
    result
}

/// The drawing thread; dropping it stops and joins it.
struct Drawer {
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drawer {
    fn start(jobs: Vec<(String, Arc<dyn Observe>)>) -> Drawer {
        let done = Arc::new(AtomicBool::new(false));
        let thread = {
            let done = Arc::clone(&done);
            std::thread::spawn(move || draw(&jobs, &done))
        };
        Drawer {
            done,
            thread: Some(thread),
        }
    }
}

impl Drop for Drawer {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

const TEMPLATE: &str = "{spinner} [{elapsed_precise}] [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}";

fn draw(jobs: &[(String, Arc<dyn Observe>)], done: &AtomicBool) {
    let tty = std::io::stderr().is_terminal();
    // A job with phases (restore: writing, then reading back) starts its counter again: the
    // rate and ETA then start again with it.
    let mut starts: Vec<Instant> = vec![Instant::now(); jobs.len()];
    let mut last_done: Vec<u64> = vec![0; jobs.len()];
    let width = jobs
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0);
    let multi = (tty && jobs.len() > 1).then(indicatif::MultiProgress::new);
    let bars: Vec<indicatif::ProgressBar> = if tty {
        jobs.iter()
            .map(|(label, _)| {
                let template = if label.is_empty() {
                    TEMPLATE.to_string()
                } else {
                    format!("{{prefix:{width}}} {TEMPLATE}")
                };
                let b = indicatif::ProgressBar::new(0);
                b.set_style(
                    indicatif::ProgressStyle::with_template(&template)
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                        .progress_chars("=> "),
                );
                b.set_prefix(label.clone());
                match &multi {
                    Some(m) => m.add(b),
                    None => b,
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut last_line = Instant::now();
    while !done.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(200));
        let lines_due = !tty && last_line.elapsed() >= Duration::from_secs(5);
        if lines_due {
            last_line = Instant::now();
        }
        for (i, (label, job)) in jobs.iter().enumerate() {
            let s = job.snapshot();
            if s.done < last_done[i] / 2 {
                starts[i] = Instant::now();
                if let Some(b) = bars.get(i) {
                    b.reset();
                }
            }
            last_done[i] = s.done;
            let bad = if s.unreadable_runs > 0 {
                format!(
                    "{} unreadable bytes in {} runs",
                    s.unreadable_bytes, s.unreadable_runs
                )
            } else {
                String::new()
            };
            if let Some(b) = bars.get(i) {
                b.set_length(s.total);
                b.set_position(s.done);
                b.set_message(format!("{} {bad}", s.phase));
            } else if lines_due {
                let secs = starts[i].elapsed().as_secs_f64().max(1e-3);
                let rate = s.done as f64 / secs;
                let eta = if rate > 0.0 {
                    (s.total.saturating_sub(s.done)) as f64 / rate
                } else {
                    0.0
                };
                let label = if label.is_empty() {
                    String::new()
                } else {
                    format!("{label}: ")
                };
                eprintln!(
                    "exhibit: {label}{}: {} of {} bytes ({:.1}%), {:.0} MB/s, ETA {:.0} s {bad}",
                    s.phase,
                    s.done,
                    s.total,
                    if s.total > 0 {
                        s.done as f64 * 100.0 / s.total as f64
                    } else {
                        100.0
                    },
                    rate / 1e6,
                    eta
                );
            }
        }
    }
    for b in bars {
        b.finish_and_clear();
    }
}
