//! gobs-app: a boss that creates machines through providers, and hob presences.
