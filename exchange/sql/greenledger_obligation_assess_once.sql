-- An obligation is never deleted; its entity, year, account and creation time never change. It is assessed
-- once (open -> complete | short | unverified) and after that changes only
--   * when a late surrender completes a short obligation (short -> late_complete, with its completion time), or
--   * when the authority determines the emissions of an unverified one (unverified -> complete | short, taking
--     the determined figure, its shortfall and penalty range),
-- and in neither case does anything else of it change.
CREATE OR REPLACE FUNCTION greenledger_obligation_assess_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE'
       OR (OLD.year_id, OLD.entity_id, OLD.account_id, OLD.created_at)
          IS DISTINCT FROM (NEW.year_id, NEW.entity_id, NEW.account_id, NEW.created_at) THEN
        RAISE EXCEPTION 'greenledger: obligation % is assessed once and otherwise never changed', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF OLD.status = 'open' THEN
        RETURN NEW;
    END IF;
    IF OLD.sector IS DISTINCT FROM NEW.sector THEN
        RAISE EXCEPTION 'greenledger: obligation % is assessed; its sector no longer changes', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF OLD.status = 'short' AND NEW.status = 'late_complete' AND NEW.completed_at IS NOT NULL
       AND (OLD.assessed_at, OLD.assessed_emissions, OLD.assessed_surrendered, OLD.shortfall, OLD.price_fen,
            OLD.penalty_min_fen, OLD.penalty_max_fen)
           IS NOT DISTINCT FROM
           (NEW.assessed_at, NEW.assessed_emissions, NEW.assessed_surrendered, NEW.shortfall, NEW.price_fen,
            NEW.penalty_min_fen, NEW.penalty_max_fen) THEN
        RETURN NEW;
    END IF;
    IF OLD.status = 'unverified' AND NEW.status IN ('complete', 'short') AND NEW.assessed_emissions IS NOT NULL
       AND OLD.assessed_at IS NOT DISTINCT FROM NEW.assessed_at AND NEW.completed_at IS NULL THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'greenledger: obligation % is assessed once and otherwise never changed', OLD.id
        USING ERRCODE = 'restrict_violation';
END
$$;
