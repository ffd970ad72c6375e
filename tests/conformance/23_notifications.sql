-- LISTEN and NOTIFY on one connection: NotificationResponse (its sender pid is not compared).
-- modes: session auto
LISTEN conf_channel
-- next
NOTIFY conf_channel, 'payload one'
-- next
SELECT pg_notify('conf_channel', 'payload two')
-- next
NOTIFY conf_channel
-- next
UNLISTEN *
-- next
NOTIFY conf_channel, 'not delivered'
