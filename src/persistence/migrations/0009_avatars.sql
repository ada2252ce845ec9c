-- Uploaded profile pictures, stored resized to fixed sizes (WebP).

CREATE TABLE avatars (
  account_id   text NOT NULL CONSTRAINT avatars__account_id REFERENCES accounts (id) ON DELETE CASCADE,
  size         integer NOT NULL,
  image        bytea NOT NULL,
  content_type text NOT NULL,
  version      text NOT NULL,
  CONSTRAINT avatars__pkey PRIMARY KEY (account_id, size)
);
