-- When a spent authorization code was presented again. The first exchange only stores its grant
-- while this is unset, so a replay that lands before the grant exists still stops it: there is
-- no moment in which a replay finds nothing to revoke and the first exchange goes on to succeed.
ALTER TABLE auth_codes ADD COLUMN replayed_at INTEGER;
