-- An upload belongs to the device that created it (issue 11): one row per (digest, length,
-- device), so a device never joins, resumes or writes into another device's upload. Two
-- devices sending the same blob each have their own upload (and partial file); whichever
-- finishes first installs the blob, and the other's upload is then reported complete.
ALTER TABLE uploads DROP CONSTRAINT uploads_sha256_length_bytes_key;
ALTER TABLE uploads ADD CONSTRAINT uploads_sha256_length_bytes_created_by_key
    UNIQUE (sha256, length_bytes, created_by);
