{{ config(
     sinks=[{'kind': 'kafka', 'topic': 'transactions_rejected', 'key': 'txn_id'},
            {'kind': 'parquet', 'path': 'rejected'}],
     trigger='1 second') }}

-- Records that could not be scored, kept with where they came from and why.
-- Written to Parquet in 1-second micro-batches: without a trigger Spark starts the next batch
-- as soon as the last ended, and an idle query asks Kafka for new offsets every 10 ms.
-- raw_value: the first raw_value_max_bytes bytes of the Kafka value as text (a multi-byte
-- character cut at the limit shows as U+FFFD); for reason invalid_utf8 it is the base64 of
-- those bytes instead, since the bytes are not text. NULL for a null value.
-- raw_length: the whole value's length in bytes (0 for empty, NULL for a null value).
-- txn_id is the Kafka key when the record had one; it may be NULL.
SELECT
  kafka_partition,
  kafka_offset,
  kafka_timestamp,
  reject_reason AS reason,
  txn_id,
  CASE
    WHEN reject_reason = 'invalid_utf8'
      THEN base64(substr(value, 1, {{ var('raw_value_max_bytes') }}))
    ELSE make_valid_utf8(CAST(substr(value, 1, {{ var('raw_value_max_bytes') }}) AS STRING))
  END AS raw_value,
  octet_length(value) AS raw_length
FROM {{ ref('stg_parsed') }}
WHERE reject_reason IS NOT NULL
