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
    let drawer = show.then(|| Drawer::start(Arc::clone(&progress) as Arc<dyn Observe>));
    let result = job(&progress);
    drop(drawer);
    result
}

/// The drawing thread; dropping it stops and joins it.
struct Drawer {
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drawer {
    fn start(job: Arc<dyn Observe>) -> Drawer {
        let done = Arc::new(AtomicBool::new(false));
        let thread = {
            let done = Arc::clone(&done);
            std::thread::spawn(move || draw(&*job, &done))
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

fn draw(job: &dyn Observe, done: &AtomicBool) {
    let tty = std::io::stderr().is_terminal();
    let mut start = Instant::now();
    // A job with phases (restore: writing, then reading back) starts its counter again: the
    // rate and ETA then start again with it.
    let mut last_done = 0u64;
    let bar = tty.then(|| {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        b
    });
    let mut last_line = Instant::now();
    while !done.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(200));
        let s = job.snapshot();
        if s.done < last_done / 2 {
            start = Instant::now();
            if let Some(b) = &bar {
                b.reset();
            }
        }
        last_done = s.done;
        let bad = if s.unreadable_runs > 0 {
            format!(
                "{} unreadable bytes in {} runs",
                s.unreadable_bytes, s.unreadable_runs
            )
        } else {
            String::new()
        };
        if let Some(b) = &bar {
            b.set_length(s.total);
            b.set_position(s.done);
            b.set_message(format!("{} {bad}", s.phase));
        } else if last_line.elapsed() >= Duration::from_secs(5) {
            last_line = Instant::now();
            let secs = start.elapsed().as_secs_f64().max(1e-3);
            let rate = s.done as f64 / secs;
            let eta = if rate > 0.0 {
                (s.total.saturating_sub(s.done)) as f64 / rate
            } else {
                0.0
            };
            eprintln!(
                "exhibit: {}: {} of {} bytes ({:.1}%), {:.0} MB/s, ETA {:.0} s {bad}",
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
    if let Some(b) = bar {
        b.finish_and_clear();
    }
}
