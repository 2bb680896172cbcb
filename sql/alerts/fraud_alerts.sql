{{ config(
     sinks=[{'kind': 'kafka', 'topic': 'fraud_alerts', 'key': 'txn_id', 'trigger': 'realtime'},
            {'kind': 'parquet', 'path': 'alerts'}],
     output_mode='append',
     trigger='1 second') }}

-- The alerts, keyed by txn_id so consumers can de-duplicate (the Kafka sink is at-least-once).
-- To Kafka in Spark's Real-time Mode: this path is stateless (parse, score, threshold), so each
-- alert leaves within milliseconds of its transaction instead of waiting for a micro-batch.
-- To Parquet in 1-second micro-batches, exactly-once.
SELECT txn_id, event_time, Amount, Class, fraud_prob, is_alert, kafka_partition, kafka_offset
FROM {{ ref('scored_transactions') }}
WHERE is_alert
