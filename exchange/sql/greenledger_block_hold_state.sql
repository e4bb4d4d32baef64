-- A serial block under a hold is in the state its hold's kind gives it (exchange_hold.block_state, a
-- generated column): 'frozen' under a judicial freeze, 'held' under any other hold. The foreign key makes
-- the database refuse a frozen block that no freeze holds, and a freeze whose blocks are merely 'held'.
-- A block with no hold (hold_id NULL) is not checked (MATCH SIMPLE); block_reserved_iff_hold covers it.
ALTER TABLE exchange_serialblock DROP CONSTRAINT IF EXISTS block_hold_state_fk;
ALTER TABLE exchange_serialblock
    ADD CONSTRAINT block_hold_state_fk FOREIGN KEY (hold_id, state)
    REFERENCES exchange_hold (id, block_state);
