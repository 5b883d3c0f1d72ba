//! Runs one operation against the real stack and reports what it answered: the HTTP status
//! of each call (compared with the model's), plus the run ids it learned.

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::check::{Violation, wait_for};
use super::model::Expect;
use super::ops::{FaultTarget, Op, RunKind, SLUGS};
use super::stack::{RUN_DEADLINE, Stack, TOKEN};

use rocky::api::console::{CreateWorkspace, SubmitRequest, paths};

/// What an operation did.
#[derive(Default)]
pub struct Done {
    pub answers: Vec<u16>,
    /// Runs it started: (run id, kind).
    pub runs: Vec<(String, RunKind)>,
}

/// How long a step may wait for the stack to settle before it fails, naming what it awaited.
pub const SETTLE: Duration = Duration::from_secs(20);

/// The provision of workspace `w` on `tier`, as JSON.
fn create_body(w: usize, tier: &str) -> serde_json::Value {
    serde_json::to_value(CreateWorkspace {
        slug: SLUGS[w].to_owned(),
        tier: tier.to_owned(),
    })
    .expect("a request serialises")
}

fn prompts(kind: RunKind) -> (Vec<&'static str>, u32) {
    match kind {
        RunKind::Normal => (
            vec![
                "plan [ralph:converge=2]",
                "build",
                "test [ralph:converge=3]",
            ],
            4,
        ),
        RunKind::Never => (vec!["plan", "build [ralph:never]"], 3),
        RunKind::Held => (vec!["plan", "wait [ralph:hold]"], 2),
    }
}

impl Stack {
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(u16, serde_json::Value), Violation> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.console_url))
            .bearer_auth(TOKEN)
            .timeout(Duration::from_secs(60));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| {
            Violation::new(
                "console",
                format!("the console did not answer {method} {path}: {e}"),
            )
        })?;
        let status = resp.status().as_u16();
        let body = resp.json().await.unwrap_or(serde_json::Value::Null);
        if status >= 400 && method != reqwest::Method::GET {
            self.errors
                .lock()
                .expect("errors lock")
                .push(format!("{method} {path}: {status} {body}"));
        }
        Ok((status, body))
    }

    async fn provision(&self, w: usize, tier: &str) -> Result<u16, Violation> {
        let body = create_body(w, tier);
        Ok(self
            .call(reqwest::Method::POST, paths::WORKSPACES, Some(body))
            .await?
            .0)
    }

    async fn teardown(&self, w: usize) -> Result<u16, Violation> {
        let path = paths::workspace(SLUGS[w]);
        Ok(self.call(reqwest::Method::DELETE, &path, None).await?.0)
    }

    /// The console's status of `w` (`None`: 404).
    pub async fn console_status(&self, w: usize) -> Result<Option<String>, Violation> {
        let path = paths::workspace(SLUGS[w]);
        let (code, body) = self.call(reqwest::Method::GET, &path, None).await?;
        match code {
            200 => Ok(body["status"].as_str().map(str::to_owned)),
            404 => Ok(None),
            other => Err(Violation::new(
                "console",
                format!("GET {path} answered {other}: {body}"),
            )),
        }
    }

    /// The console's view of run `id`: its status and the whole view.
    pub async fn run_view(&self, id: &str) -> Result<(String, serde_json::Value), Violation> {
        let path = paths::run(id);
        let (code, body) = self.call(reqwest::Method::GET, &path, None).await?;
        if code != 200 {
            return Err(Violation::new(
                "console",
                format!("GET {path} answered {code}: {body}"),
            ));
        }
        Ok((body["status"].as_str().unwrap_or("?").to_owned(), body))
    }

    async fn submit(&self, w: usize, kind: RunKind, done: &mut Done) -> Result<u16, Violation> {
        let (prompts, iters) = prompts(kind);
        let body = serde_json::to_value(SubmitRequest {
            workspace: SLUGS[w].to_owned(),
            prompts: prompts.iter().map(|p| (*p).to_owned()).collect(),
            max_ralph_iters: Some(iters),
        })
        .expect("a request serialises");
        let (code, answer) = self
            .call(reqwest::Method::POST, paths::RUNS, Some(body))
            .await?;
        if code == 202
            && let Some(id) = answer["run_id"].as_str()
        {
            done.runs.push((id.to_owned(), kind));
        }
        Ok(code)
    }

    /// Sends `request` and hangs up once `taken` holds for the console's status of `w` (the
    /// console has the act in hand), then waits until the status is `settled`.
    async fn hang_up(
        &self,
        w: usize,
        request: String,
        taken: &[&str],
        settled: &str,
    ) -> Result<u16, Violation> {
        let addr = self.console_url.trim_start_matches("http://").to_owned();
        let mut stream = tokio::net::TcpStream::connect(&addr)
            .await
            .map_err(|e| Violation::new("console", format!("failed to connect to {addr}: {e}")))?;
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| Violation::new("console", format!("failed to send the request: {e}")))?;
        let what = format!("the console to show {} as one of {taken:?}", SLUGS[w]);
        wait_for(&what, SETTLE, || async {
            let s = self.console_status(w).await?;
            Ok(s.as_deref().is_some_and(|s| taken.contains(&s)))
        })
        .await?;
        drop(stream);
        let what = format!("{} to settle {settled} after its caller hung up", SLUGS[w]);
        wait_for(&what, SETTLE, || async {
            Ok(self.console_status(w).await?.as_deref() == Some(settled))
        })
        .await?;
        Ok(if settled == "ready" { 201 } else { 200 })
    }

    fn raw(method: &str, path: &str, body: &str) -> String {
        format!(
            "{method} {path} HTTP/1.1\r\nHost: console\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    /// Runs `op`; `expect` is what the model says (it picks the shape of a hang-up).
    pub async fn run_op(&mut self, op: &Op, expect: &Expect) -> Result<Done, Violation> {
        let mut done = Done::default();
        match *op {
            Op::Provision(w) => done.answers.push(self.provision(w, "solo").await?),
            Op::ProvisionBroken(w) => done.answers.push(self.provision(w, "broken").await?),
            Op::ProvisionHangUp(w) if expect.answers == [201] => {
                let body = create_body(w, "slow").to_string();
                let req = Self::raw("POST", paths::WORKSPACES, &body);
                done.answers.push(
                    self.hang_up(w, req, &["provisioning", "ready"], "ready")
                        .await?,
                );
            }
            Op::ProvisionHangUp(w) => done.answers.push(self.provision(w, "slow").await?),
            Op::ProvisionThenTeardown(w) => {
                let before = self.console_status(w).await?;
                let post = {
                    let http = self.http.clone();
                    let url = format!("{}{}", self.console_url, paths::WORKSPACES);
                    let body = create_body(w, "slow");
                    tokio::spawn(async move {
                        http.post(url)
                            .bearer_auth(TOKEN)
                            .json(&body)
                            .timeout(Duration::from_secs(60))
                            .send()
                            .await
                            .map(|r| r.status().as_u16())
                    })
                };
                if expect.answers.first() == Some(&201) {
                    // Send the DELETE while the console shows the provision in flight.
                    let what = format!("the console to take the provision of {}", SLUGS[w]);
                    wait_for(&what, SETTLE, || async {
                        let s = self.console_status(w).await?;
                        Ok(s != before
                            && s.as_deref()
                                .is_some_and(|s| ["provisioning", "ready"].contains(&s)))
                    })
                    .await?;
                }
                let answered = |joined: Result<reqwest::Result<u16>, tokio::task::JoinError>| {
                    joined
                        .map_err(|e| {
                            Violation::new("console", format!("the POST task failed: {e}"))
                        })?
                        .map_err(|e| {
                            Violation::new("console", format!("the POST got no answer: {e}"))
                        })
                };
                done.answers = if expect.answers.first() == Some(&201) {
                    let deleted = self.teardown(w).await?;
                    vec![answered(post.await)?, deleted]
                } else {
                    // The workspace is taken: the POST is refused first, then the DELETE
                    // goes. Sent at once, the DELETE could free the workspace before the
                    // console read the POST, which would then provision it (seed 7706).
                    let posted = answered(post.await)?;
                    vec![posted, self.teardown(w).await?]
                };
            }
            Op::Teardown(w) => done.answers.push(self.teardown(w).await?),
            Op::TeardownConcurrent(w, k) => {
                let calls = (0..k).map(|_| self.teardown(w));
                for r in futures::future::join_all(calls).await {
                    done.answers.push(r?);
                }
            }
            Op::TeardownHangUp(w) if expect.answers == [200] && !expect.records.is_empty() => {
                let req = Self::raw("DELETE", &paths::workspace(SLUGS[w]), "");
                let before = self.count_records("hearth.decommissioned", SLUGS[w]);
                done.answers.push(
                    self.hang_up(
                        w,
                        req,
                        &["tearing_down", "tier_torn_down"],
                        "tier_torn_down",
                    )
                    .await?,
                );
                // The status shows once the teardown is over: its record is in, and the slug
                // is free (a provision now is not refused as busy).
                if self.count_records("hearth.decommissioned", SLUGS[w]) <= before {
                    return Err(Violation::new(
                        "status",
                        format!(
                            "{} read tier_torn_down before its hearth.decommissioned was recorded",
                            SLUGS[w]
                        ),
                    ));
                }
            }
            Op::TeardownHangUp(w) => done.answers.push(self.teardown(w).await?),
            Op::Submit(w, kind) => {
                let code = self.submit(w, kind, &mut done).await?;
                done.answers.push(code);
            }
            Op::DeadlinePasses => {}
            Op::KillWorker => self
                .kill_worker()
                .await
                .map_err(|e| Violation::new("worker", e))?,
            Op::RestartWorker => self
                .restart_worker()
                .await
                .map_err(|e| Violation::new("worker", e))?,
            Op::CrashHearth => {
                self.crash_hearth()
                    .await
                    .map_err(|e| Violation::new("hearth", e))?;
                let client = self.hearth_client.clone();
                wait_for(
                    "the restarted hearth to settle every workspace it adopted",
                    SETTLE,
                    || {
                        let client = client.clone();
                        async move {
                            Ok(match client.list(Duration::from_secs(2)).await {
                                Ok(all) => all.iter().all(|d| d.status.as_str() != "provisioning"),
                                Err(_) => false,
                            })
                        }
                    },
                )
                .await?;
            }
            Op::SecondHearth => {
                let (status, stderr) = self
                    .second_hearth()
                    .await
                    .map_err(|e| Violation::new("one hearth per socket", e))?;
                if status.success() {
                    return Err(Violation::new(
                        "one hearth per socket",
                        format!("a second hearth on the live socket exited {status}: {stderr}"),
                    ));
                }
            }
            Op::Fault(at, target, w) => {
                let kind = match target {
                    FaultTarget::ProvisionStart => "hearth.provisioning_started",
                    FaultTarget::Provisioned => "hearth.provisioned",
                    FaultTarget::Teardown => "hearth.decommission_started",
                    FaultTarget::Submit => "ralph.run.started",
                };
                let hits = self.disk.hits.load(std::sync::atomic::Ordering::SeqCst);
                self.disk.arm(at, kind, SLUGS[w]);
                let code = match target {
                    FaultTarget::ProvisionStart | FaultTarget::Provisioned => {
                        self.provision(w, "solo").await
                    }
                    FaultTarget::Teardown => self.teardown(w).await,
                    FaultTarget::Submit => self.submit(w, RunKind::Normal, &mut done).await,
                };
                self.disk.disarm();
                done.answers.push(code?);
                let hit = self.disk.hits.load(std::sync::atomic::Ordering::SeqCst) > hits;
                // An answer other than the model's is the answers check's to report (with the
                // console's error); a 503 the fault did not cause is this one's.
                if expect.answers == [503] && done.answers == [503] && !hit {
                    return Err(Violation::new(
                        "model",
                        format!("the {kind} append of {} was never attempted", SLUGS[w]),
                    ));
                }
            }
            Op::Read => {}
        }
        Ok(done)
    }

    /// How many records of `kind` about `slug` the log holds: its sealed prefix only (a line
    /// written but not yet committed is not part of the log yet).
    fn count_records(&self, kind: &str, slug: &str) -> usize {
        let needles = [
            format!("\"kind\":\"{kind}\""),
            format!("\"workspace\":\"{slug}\""),
        ];
        let seal_path = rocky::hatch::seal_path(&self.hatch_path);
        let sealed = std::fs::read(&seal_path)
            .ok()
            .and_then(|b| rocky::hatch::Checkpoint::parse(&seal_path, &b).ok())
            .map_or(0, |c| c.seal.records as usize);
        std::fs::read_to_string(&self.hatch_path)
            .unwrap_or_default()
            .split_inclusive('\n')
            .take(sealed)
            .filter(|l| needles.iter().all(|n| l.contains(n.as_str())))
            .count()
    }

    /// Waits until every run in `held` has ended at the console (its run deadline, or a
    /// teardown, ended it).
    pub async fn deadline_passes(&self, held: &[String]) -> Result<(), Violation> {
        for id in held {
            let what =
                format!("held run {id} to end at the console's run deadline ({RUN_DEADLINE:?})");
            wait_for(&what, RUN_DEADLINE + SETTLE, || async {
                Ok(self.run_view(id).await?.0 != "running")
            })
            .await?;
        }
        Ok(())
    }
}
