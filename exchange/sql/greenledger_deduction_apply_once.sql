-- A deduction decision is never deleted or rewritten; it is marked applied once (the allocation entry that
-- deducted it and when), and never after.
CREATE OR REPLACE FUNCTION greenledger_deduction_apply_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR OLD.applied_entry_id IS NOT NULL OR NEW.applied_entry_id IS NULL
       OR (OLD.obligation_id, OLD.target_year, OLD.quantity, OLD.reason, OLD.actor_label, OLD.created_at)
          IS DISTINCT FROM
          (NEW.obligation_id, NEW.target_year, NEW.quantity, NEW.reason, NEW.actor_label, NEW.created_at) THEN
        RAISE EXCEPTION 'greenledger: deduction % is decided once and applied once', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END
$$;
