-- A patient's Swedish personal identity number (personnummer or samordningsnummer), in the
-- twelve-digit form, validated with its check digit in the domain before it is stored. Shown
-- and exported only to roles that need it; optional (a patient without one is exported with
-- the local id).
ALTER TABLE patients
    ADD COLUMN personal_id      text UNIQUE CHECK (personal_id ~ '^[0-9]{12}$'),
    ADD COLUMN personal_id_kind text CHECK (personal_id_kind IN ('personnummer', 'samordningsnummer')),
    ADD CONSTRAINT patients_personal_id_kind CHECK ((personal_id IS NULL) = (personal_id_kind IS NULL));
