use std::fmt;
use std::str::FromStr;

/// Which world a key belongs to. It is written into both keys (`pk_live_…`,
/// `sk_test_…`) so that people and secret scanners can tell what leaked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Environment {
    /// Production traffic.
    Live,
    /// Test and staging traffic.
    Test,
}

impl Environment {
    /// Every environment, in a stable order.
    pub const ALL: [Environment; 2] = [Environment::Live, Environment::Test];

    /// The lowercase name used on the wire, in storage and in key prefixes.
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Live => "live",
            Environment::Test => "test",
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The value is neither `live` nor `test`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("environment must be one of 'live', 'test'")]
pub struct UnknownEnvironment;

impl FromStr for Environment {
    type Err = UnknownEnvironment;

    /// Exact, lowercase match: `Live` is refused rather than silently accepted, so a
    /// stored value and a key prefix can never disagree in case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "live" => Ok(Environment::Live),
            "test" => Ok(Environment::Test),
            _ => Err(UnknownEnvironment),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exactly_the_lowercase_names() {
        for env in Environment::ALL {
            assert_eq!(env.as_str().parse::<Environment>(), Ok(env));
        }
        assert_eq!("Live".parse::<Environment>(), Err(UnknownEnvironment));
        assert_eq!("prod".parse::<Environment>(), Err(UnknownEnvironment));
        assert_eq!("".parse::<Environment>(), Err(UnknownEnvironment));
    }
}
