-- The transactions that can be scored: every field present, typed and finite.
SELECT
  txn_id, event_time, Time, {{ feature_list() }}, Class,
  kafka_partition, kafka_offset, kafka_timestamp
FROM {{ ref('stg_parsed') }}
WHERE reject_reason IS NULL
