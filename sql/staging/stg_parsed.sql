-- Every record of the Kafka topic `transactions`, parsed, with reject_reason NULL when it can be
-- scored, else one reason from a fixed vocabulary (first that applies, in the order below).
--
-- Parsing bounds throughput, so each value goes through from_json exactly once. Fields are read
-- as STRING (their JSON text), then cast here: that one parse tells an absent or null field
-- (NULL) from a present one of the wrong type (text that does not cast). Only records that are
-- already corrupt pay a second, tiny parse (json_array_length) to tell not_json from not_object.
-- Numbers quoted as strings ("0.5") are accepted as numbers; event_time is an ISO-8601 timestamp
-- (a time without offset is read in the session time zone). Unknown extra fields are ignored.
-- A record is never dropped here: valid rows go on to stg_transactions, the rest to
-- rejected_transactions.
WITH raw AS (
  SELECT
    partition AS kafka_partition,
    offset AS kafka_offset,
    timestamp AS kafka_timestamp,
    value,
    CAST(value AS STRING) AS text
  FROM {{ source('kafka', 'transactions') }}
),

parsed AS (
  SELECT *, from_json(text, {{ json_text_schema() }}) AS j
  FROM raw
),

typed AS (
  SELECT
    kafka_partition, kafka_offset, kafka_timestamp, value, text,
    j._corrupt_record AS corrupt_text,
    j.txn_id AS txn_id,
    j.event_time AS event_time_text,
    try_cast(j.event_time AS TIMESTAMP) AS event_time,
    j.Time AS time_text,
    {{ json_double('j.Time') }} AS Time,
    {%- for f in feature_names %}
    j.{{ f }} AS {{ f }}_text,
    {{ json_double('j.' ~ f) }} AS {{ f }},
    {%- endfor %}
    j.Class AS class_text,
    -- Class is the label (0/1), not a feature: it may be absent; 1.0 is read as 1.
    CASE WHEN {{ json_double('j.Class') }} = round({{ json_double('j.Class') }})
         THEN try_cast({{ json_double('j.Class') }} AS INT) END AS Class
  FROM parsed
)

SELECT
  kafka_partition, kafka_offset, kafka_timestamp, value,
  txn_id, event_time, Time, {{ feature_list() }}, Class,
  CASE
    WHEN value IS NULL THEN 'null_value'
    WHEN octet_length(value) = 0 THEN 'empty_value'
    WHEN NOT is_valid_utf8(text) THEN 'invalid_utf8'
    -- a valid JSON value that is not an object parses as one element of a JSON array
    WHEN corrupt_text IS NOT NULL AND json_array_length('[' || text || ']') = 1 THEN 'not_object'
    WHEN corrupt_text IS NOT NULL THEN 'not_json'
    WHEN txn_id IS NULL OR trim(txn_id) = '' THEN 'missing_txn_id'
    WHEN event_time_text IS NULL THEN 'missing_event_time'
    WHEN event_time IS NULL THEN 'bad_event_time'
    WHEN {% for f in feature_names %}{{ f }}_text IS NULL{{ ' OR ' if not loop.last }}{% endfor %}
      THEN 'missing_feature'
    WHEN (time_text IS NOT NULL AND Time IS NULL)
      OR (class_text IS NOT NULL AND Class IS NULL)
      OR {% for f in feature_names %}{{ f }} IS NULL{{ ' OR ' if not loop.last }}{% endfor %}
      THEN 'bad_type'
    WHEN NOT ({{ is_finite('coalesce(Time, 0D)') }}
      AND {% for f in feature_names %}{{ is_finite(f) }}{{ ' AND ' if not loop.last }}{% endfor %})
      THEN 'non_finite'
  END AS reject_reason
FROM typed
