//! What every error boundary shares: the cause kept as a boxed error, and
//! the whole chain of causes written out once, for the log.

/// Any cause, kept with its own chain of sources.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `err` and every cause under it, outermost first, joined by `: `.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(inner) = cause {
        let line = inner.to_string();
        // Some errors repeat their source in their own message.
        if !text.ends_with(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        cause = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot store the upload")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn the_chain_names_every_cause_once() {
        let err = Outer(std::io::Error::other("disk full"));
        assert_eq!(chain(&err), "cannot store the upload: disk full");
    }
}
