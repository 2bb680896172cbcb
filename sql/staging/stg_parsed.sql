-- Every record of the Kafka topic `transactions`, parsed, with reject_reason NULL when it can be
-- scored, else one reason from a fixed vocabulary (the first that applies, in the order below).
--
-- Parsing bounds throughput, so each value goes through from_json once, into the typed schema
-- of project.yml's source. The parse sits in a generator (LATERAL VIEW explode) on purpose:
-- Spark's optimizer substitutes a plain projection's expressions into the filters and columns
-- above it, which would copy from_json into every field and condition that reads it; a
-- generator's output is a column it can only reference. Only records that are already corrupt
-- pay a second parse, to tell a JSON object with a field of the wrong type (bad_type) from a
-- value that is not an object (not_object) or not JSON.
-- Types are strict: a number quoted as a string ("0.5") is bad_type, except "NaN"/"Infinity",
-- which Spark reads as those numbers (so non_finite). Class must be an integer when present.
-- event_time is an ISO-8601 timestamp (without an offset it is read in the session time zone).
-- Unknown extra fields are ignored. Nothing is dropped: the reason decides where a record goes.
WITH parsed AS (
  SELECT
    partition AS kafka_partition,
    offset AS kafka_offset,
    timestamp AS kafka_timestamp,
    value,
    CAST(value AS STRING) AS text,
    j
  FROM {{ source('kafka', 'transactions') }}
  LATERAL VIEW explode(array(from_json(CAST(value AS STRING), {{ transaction_json_schema() }}))) AS j
),

fields AS (
  SELECT
    kafka_partition, kafka_offset, kafka_timestamp, value, text,
    j._corrupt_record AS corrupt_text,
    j.txn_id AS txn_id,
    j.event_time AS event_time_text,
    try_cast(j.event_time AS TIMESTAMP) AS event_time,
    j.Time AS Time,
    {{ feature_list('j.') }},
    j.Class AS Class
  FROM parsed
)

SELECT
  kafka_partition, kafka_offset, kafka_timestamp, value,
  txn_id, event_time, Time, {{ feature_list() }}, Class,
  CASE
    WHEN value IS NULL THEN 'null_value'
    WHEN octet_length(value) = 0 THEN 'empty_value'
    WHEN NOT is_valid_utf8(text) THEN 'invalid_utf8'
    -- corrupt and not a JSON object: a valid JSON value parses as one element of an array
    WHEN corrupt_text IS NOT NULL AND from_json(text, 'MAP<STRING, STRING>') IS NULL
      THEN CASE WHEN json_array_length('[' || text || ']') = 1 THEN 'not_object' ELSE 'not_json' END
    WHEN txn_id IS NULL OR trim(txn_id) = '' THEN 'missing_txn_id'
    WHEN event_time_text IS NULL THEN 'missing_event_time'
    WHEN event_time IS NULL THEN 'bad_event_time'
    -- an object that is corrupt has a field Spark could not read as its type
    WHEN corrupt_text IS NOT NULL THEN 'bad_type'
    WHEN {% for f in feature_names %}{{ f }} IS NULL{{ ' OR ' if not loop.last }}{% endfor %}
      THEN 'missing_feature'
    WHEN NOT ({{ is_finite('coalesce(Time, 0D)') }}
      AND {% for f in feature_names %}{{ is_finite(f) }}{{ ' AND ' if not loop.last }}{% endfor %})
      THEN 'non_finite'
  END AS reject_reason
FROM fields
