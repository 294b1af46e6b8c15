//! What is DPS-specific, as pure functions and types: topics, request bodies and responses
//! (`protocol`), SAS tokens and group keys (`sas`), the client certificate's CN (`x509`), and
//! the stored assignment blob (`assignment`).

pub mod assignment;
pub mod protocol;
pub mod sas;
pub mod x509;
