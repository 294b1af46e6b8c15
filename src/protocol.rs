//! DPS topics, user name, request bodies and response parsing.
