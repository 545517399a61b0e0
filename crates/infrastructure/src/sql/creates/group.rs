//! SQLite's concurrent creates, committed in groups by one task: the queue it
//! drains, a group's statements sent in as few strings as their shapes allow,
//! and the run again one create at a time, each in its own savepoint, when a
//! statement fails.

use std::sync::{Arc, OnceLock};

use anyhow::anyhow;
use keymint_application::RepositoryError;
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseTransaction, Statement, TransactionTrait};
use tokio::sync::{mpsc, oneshot, Notify};
use uuid::Uuid;

use super::{create_in, finish, run_in_turn, statements_of, Create, Recipients};
use crate::home_runtime::HomeRuntime;
use crate::sql::Database;

/// The most creates in one transaction. A group holds SQLite's write lock
/// while it runs, so other writers (updates, usage, another process) wait at
/// most this many creates.
const MAX_GROUP: usize = 64;
/// Creates waiting for a group; past this, callers wait to join the queue.
const QUEUE: usize = 1024;
const SAVEPOINT: &str = "keymint_create";

type Reply = oneshot::Sender<Result<usize, RepositoryError>>;

/// Concurrent creates on SQLite, committed in groups by one task.
#[derive(Debug)]
pub(crate) struct Group {
    db: Database,
    queued: Arc<Notify>,
    runtime: HomeRuntime,
    sender: OnceLock<mpsc::Sender<(Create, Reply)>>,
}

impl Group {
    /// The task starts with the first create, on the runtime this is made on
    /// if there is one (the one the process serves from), else the caller's.
    pub(crate) fn new(db: Database, queued: Arc<Notify>) -> Self {
        Self {
            db,
            queued,
            runtime: HomeRuntime::current(),
            sender: OnceLock::new(),
        }
    }

    /// Stores `create` in the next group and answers once that group is
    /// committed (or refused this create).
    pub(crate) async fn create(&self, create: Create) -> Result<(), RepositoryError> {
        let sender = self.sender.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(QUEUE);
            self.runtime
                .spawn(write_groups(self.db.clone(), self.queued.clone(), receiver));
            sender
        });
        let (reply, answer) = oneshot::channel();
        sender
            .send((create, reply))
            .await
            .map_err(|_| RepositoryError::Unavailable(anyhow!("the create queue has stopped")))?;
        match answer.await {
            Ok(outcome) => outcome.map(|_| ()),
            Err(_) => Err(RepositoryError::Unexpected(anyhow!(
                "the create was dropped before its group was committed"
            ))),
        }
    }
}

async fn write_groups(db: Database, queued: Arc<Notify>, mut receiver: mpsc::Receiver<(Create, Reply)>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while receiver.recv_many(&mut group, MAX_GROUP).await > 0 {
        let taken = std::mem::replace(&mut group, Vec::with_capacity(MAX_GROUP));
        // Its own task, so a panic fails this group's callers (their replies
        // are dropped), not every create after it.
        let (db, queued) = (db.clone(), queued.clone());
        if let Err(err) = tokio::spawn(async move { commit_group(&db, &queued, taken).await }).await {
            tracing::error!(error = %err, "a group of creates failed; its callers were answered with an error");
        }
    }
}

async fn commit_group(db: &Database, queued: &Notify, mut group: Vec<(Create, Reply)>) {
    // A caller that stopped waiting (its client went away) gets no key that
    // nobody will ever see. One that leaves during the commit may still.
    group.retain(|(_, reply)| !reply.is_closed());
    if group.is_empty() {
        return;
    }
    let creates: Vec<&Create> = group.iter().map(|(create, _)| create).collect();
    let outcomes = match all_at_once(db, &creates).await {
        Ok(Ok((txn, outcomes))) => commit(db, txn, outcomes).await,
        Ok(Err(())) => match one_at_a_time(db, &creates).await {
            Ok((txn, outcomes)) => commit(db, txn, outcomes).await,
            Err(err) => Err(err),
        },
        Err(err) => Err(err),
    };
    match outcomes {
        Ok(outcomes) => {
            if outcomes
                .iter()
                .any(|outcome| matches!(outcome, Ok(queued) if *queued > 0))
            {
                queued.notify_one();
            }
            for ((_, reply), outcome) in group.into_iter().zip(outcomes) {
                let _ = reply.send(outcome);
            }
        }
        Err(err) => {
            for (_, reply) in group {
                let _ = reply.send(Err(copy(&err)));
            }
        }
    }
}

type Outcomes = Vec<Result<usize, RepositoryError>>;

/// Commits `txn`; if that fails, no create of the group was stored, whatever
/// its outcome said.
async fn commit(db: &Database, txn: DatabaseTransaction, outcomes: Outcomes) -> Result<Outcomes, RepositoryError> {
    txn.commit().await.map_err(|e| db.classify(e))?;
    Ok(outcomes)
}

/// Every create of the group in as few hand-offs as the strings allow.
/// `Ok(Err(()))`: something failed that one create may own; the transaction
/// was rolled back, and the group should be run one create at a time.
async fn all_at_once(
    db: &Database,
    creates: &[&Create],
) -> Result<Result<(DatabaseTransaction, Outcomes), ()>, RepositoryError> {
    let txn = db.write.begin().await.map_err(|e| db.classify(e))?;
    let mut each = Vec::with_capacity(creates.len());
    for (tag, create) in creates.iter().enumerate() {
        each.push(statements_of(create, DatabaseBackend::Sqlite, Some(tag))?);
    }
    let mut rows = Vec::new();
    for chunk in chunks(&each) {
        match run_in_turn(db, &txn, chunk.iter().flatten().cloned().collect()).await {
            Ok(answered) => rows.extend(answered),
            Err(err) => return give_up(txn, err).await,
        }
    }
    let mut read = vec![Recipients::default(); creates.len()];
    for row in rows {
        let tag: i64 = row.try_get("", "tag").map_err(|e| db.classify(e))?;
        let webhook = row.try_get::<Option<Uuid>>("", "id").map_err(|e| db.classify(e))?;
        let entry = usize::try_from(tag)
            .ok()
            .and_then(|tag| read.get_mut(tag))
            .ok_or_else(|| RepositoryError::Unexpected(anyhow!("a create's rows carry an unknown tag {tag}")))?;
        entry.add(webhook);
    }
    let mut outcomes = Vec::with_capacity(creates.len());
    for (create, recipients) in creates.iter().zip(read) {
        let written = recipients.written;
        match finish(db, &txn, create, recipients).await {
            // A written create whose deliveries could not be queued must not
            // stay written: only a savepoint can take it back alone.
            Err(err) if written => return give_up(txn, err).await,
            outcome => outcomes.push(outcome),
        }
    }
    Ok(Ok((txn, outcomes)))
}

/// Rolls back after `err`: the whole group fails if storage is unavailable
/// (running it again would wait out the busy timeout once per create),
/// otherwise it is run again one create at a time.
async fn give_up(
    txn: DatabaseTransaction,
    err: RepositoryError,
) -> Result<Result<(DatabaseTransaction, Outcomes), ()>, RepositoryError> {
    let _ = txn.rollback().await;
    match err {
        RepositoryError::Unavailable(_) => Err(err),
        _ => {
            tracing::debug!(
                error = format!("{err:#}"),
                "a group of creates is run again one at a time"
            );
            Ok(Err(()))
        }
    }
}

/// The most creates sent in one string.
const MAX_CHUNK: usize = 16;

/// Splits a group into runs of at most 16 creates whose statements read
/// alike. sqlx keeps each distinct string prepared, and a string holds four
/// statements per create: a string for every group size and mix (up to 64
/// creates, 256 statements each) took 70 MB of prepared statements under
/// load; this makes at most 16 strings per shape.
fn chunks(each: &[Vec<Statement>]) -> Vec<&[Vec<Statement>]> {
    let mut chunks = Vec::new();
    let mut rest = each;
    while let Some(first) = rest.first() {
        let alike = rest
            .iter()
            .take(MAX_CHUNK)
            .take_while(|statements| same_text(statements, first))
            .count();
        let (chunk, after) = rest.split_at(alike);
        chunks.push(chunk);
        rest = after;
    }
    chunks
}

fn same_text(a: &[Statement], b: &[Statement]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a.sql == b.sql)
}

async fn one_at_a_time(db: &Database, creates: &[&Create]) -> Result<(DatabaseTransaction, Outcomes), RepositoryError> {
    let txn = db.write.begin().await.map_err(|e| db.classify(e))?;
    let mut outcomes = Vec::with_capacity(creates.len());
    for create in creates {
        // On its own, so that a rollback to it can only ever undo this create.
        let savepoint = Statement::from_string(DatabaseBackend::Sqlite, format!("SAVEPOINT {SAVEPOINT}"));
        if let Err(err) = txn.execute(savepoint).await {
            let _ = txn.rollback().await;
            return Err(db.classify(err));
        }
        let outcome = create_in(db, &txn, create).await;
        match &outcome {
            Ok(_) => {
                let release = Statement::from_string(DatabaseBackend::Sqlite, format!("RELEASE {SAVEPOINT}"));
                if let Err(err) = txn.execute(release).await {
                    let _ = txn.rollback().await;
                    return Err(db.classify(err));
                }
            }
            Err(RepositoryError::Unavailable(_)) => {
                // Busy or out of disk: the next create would only wait again.
                let _ = txn.rollback().await;
                return Err(outcome
                    .err()
                    .unwrap_or(RepositoryError::Unavailable(anyhow!("storage is unavailable"))));
            }
            Err(_) => {
                // Undoes whatever of this create was written; if even that
                // fails, the transaction is gone and so is everything before it.
                let undo = Statement::from_string(DatabaseBackend::Sqlite, format!("ROLLBACK TO {SAVEPOINT}"));
                let release = Statement::from_string(DatabaseBackend::Sqlite, format!("RELEASE {SAVEPOINT}"));
                if let Err(err) = async {
                    txn.execute(undo).await?;
                    txn.execute(release).await
                }
                .await
                {
                    let _ = txn.rollback().await;
                    return Err(db.classify(err));
                }
            }
        }
        outcomes.push(outcome);
    }
    Ok((txn, outcomes))
}

/// One error for each caller of a group. The cause is kept as text.
fn copy(err: &RepositoryError) -> RepositoryError {
    match err {
        RepositoryError::Conflict => RepositoryError::Conflict,
        RepositoryError::Stale => RepositoryError::Stale,
        RepositoryError::LimitReached => RepositoryError::LimitReached,
        RepositoryError::Unavailable(cause) => RepositoryError::Unavailable(anyhow!("{cause:#}")),
        RepositoryError::Unexpected(cause) => RepositoryError::Unexpected(anyhow!("{cause:#}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shaped(sql: &str) -> Vec<Statement> {
        vec![Statement::from_string(DatabaseBackend::Sqlite, sql.to_owned())]
    }

    #[test]
    fn chunks_are_runs_of_alike_creates_of_at_most_sixteen() {
        let mut each: Vec<_> = (0..35).map(|_| shaped("create")).collect();
        each.insert(20, shaped("import"));
        each.insert(21, shaped("import"));
        let sizes: Vec<usize> = chunks(&each).iter().map(|chunk| chunk.len()).collect();
        assert_eq!(sizes, [16, 4, 2, 15]);
        assert!(chunks(&each)
            .iter()
            .all(|chunk| chunk.iter().all(|statements| same_text(statements, &chunk[0]))));
        assert!(chunks(&[]).is_empty());
    }
}
