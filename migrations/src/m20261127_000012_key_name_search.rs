//! Name search compares lower-cased text. SQLite's `lower()` and `LIKE` fold only
//! ASCII while PostgreSQL's follow its locale, so a search folded by the database
//! would find `Élan` on one and not the other. The service writes the folded name
//! (Rust's Unicode lower case) beside each name instead, and this migration folds
//! the names already stored the same way, in Rust rather than in SQL.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, TransactionTrait};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Name,
    NameFolded,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ApiKeys::Table)
                    .add_column(ColumnDef::new(ApiKeys::NameFolded).text().not_null().default(""))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        let rows = db
            .query_all(backend.build(Query::select().distinct().column(ApiKeys::Name).from(ApiKeys::Table)))
            .await?;
        let txn = db.begin().await?;
        for row in rows {
            let name: String = row.try_get("", "name")?;
            let update = Query::update()
                .table(ApiKeys::Table)
                .value(ApiKeys::NameFolded, name.to_lowercase())
                .and_where(Expr::col(ApiKeys::Name).eq(name))
                .to_owned();
            txn.execute(backend.build(&update)).await?;
        }
        txn.commit().await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ApiKeys::Table)
                    .drop_column(ApiKeys::NameFolded)
                    .to_owned(),
            )
            .await
    }
}
