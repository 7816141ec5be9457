"""SPDK v26.05 with shared receive queues: a failed post makes the poller loop forever
(docs/spdk-findings.md, item 9).  Run from the project root with
NRT_TARGET=spdk NRT_SPDK_SRC=<the v26.05 tree>: the teardown ends in CRASH-1
"hang in nrt_rig_run" (the 30 s watchdog)."""

from conformance.reproduce import *

state = FaultMachine()
state.start(config=GateConfig(options=TransportOptions(max_queue_depth=8,
  max_io_size=18432,
  io_unit_size=2048,
  in_capsule_data_size=0,
  num_shared_buffers=15,
  buf_cache_size=5,
  wr_pool_multiplier=3,
  wr_pool_size=15,
  wr_cache_size=2,
  num_poll_groups=1,
  max_read_depth=11,
  max_send_depth=0,
  max_sge=16,
  max_sgl_descriptors=11,
  keep_alive_ticks=0,
  max_qpairs=64,
  max_ports=4,
  max_subsystems=8,
  max_namespaces=2,
  max_memory_regions=4,
  defects=0,
  srq=1,
  max_srq_depth=5),
 topology=Topology(num_ports=2,
  subsystems=(Subsystem(namespaces=(Namespace(512, 244), Namespace(4096, 166)),
    controllers=(Controller(admin=QpairPlacement(depth=8, group=0, port=1),
      io=(QpairPlacement(depth=4, group=0, port=1),
       QpairPlacement(depth=8, group=0, port=1))),
     Controller(admin=QpairPlacement(depth=8, group=0, port=1),
      io=(QpairPlacement(depth=3, group=0, port=1),
       QpairPlacement(depth=5, group=0, port=1),
       QpairPlacement(depth=8, group=0, port=1))))),))))
state.storm(plan=(), schedule=Schedule(steps=(ScheduleStep(kind='h2t', index=1, repeat=12), ScheduleStep(kind='t2h', index=7, repeat=1), ScheduleStep(kind='h2t', index=6, repeat=1))), shapes=(IoShape(op='read', qpair=6, namespace=3, blocks=62, start=15046, layout='keyed_list', cuts=(160, 931, 671), gap=27), IoShape(op='flush', qpair=5, namespace=0, blocks=34, start=61, layout='in_capsule', cuts=(821, 270, 85, 158), gap=63)))
state.storm(plan=((2, Fault(kind='bdev_error', target=0, count=2, status=4)),), schedule=Schedule(steps=(ScheduleStep(kind='h2t', index=8, repeat=1), ScheduleStep(kind='h2t', index=9, repeat=1), ScheduleStep(kind='poll', index=12, repeat=6), ScheduleStep(kind='bdev', index=6, repeat=1))), shapes=(IoShape(op='write', qpair=0, namespace=1, blocks=15, start=2220, layout='in_capsule', cuts=(), gap=4),))
state.storm(plan=((16, Fault(kind='post_fail', target=6, count=1, status=0)),
 (25, Fault(kind='post_fail', target=8, count=7, status=0))), schedule=Schedule(steps=(ScheduleStep(kind='h2t', index=5, repeat=1), ScheduleStep(kind='t2h', index=3, repeat=1), ScheduleStep(kind='tick', index=8, repeat=1), ScheduleStep(kind='poll', index=15, repeat=1), ScheduleStep(kind='h2t', index=3, repeat=1), ScheduleStep(kind='poll', index=8, repeat=10), ScheduleStep(kind='t2h', index=13, repeat=1), ScheduleStep(kind='bdev', index=0, repeat=1), ScheduleStep(kind='bdev', index=11, repeat=2))), shapes=(IoShape(op='write', qpair=7, namespace=0, blocks=2, start=1494, layout='keyed_list', cuts=(), gap=5),))
state.storm(plan=(), schedule=Schedule(steps=(ScheduleStep(kind='h2t', index=3, repeat=1), ScheduleStep(kind='poll', index=5, repeat=1), ScheduleStep(kind='h2t', index=15, repeat=1), ScheduleStep(kind='t2h', index=0, repeat=4), ScheduleStep(kind='t2h', index=15, repeat=12), ScheduleStep(kind='bdev', index=15, repeat=1), ScheduleStep(kind='poll', index=14, repeat=1), ScheduleStep(kind='bdev', index=4, repeat=1), ScheduleStep(kind='h2t', index=4, repeat=1), ScheduleStep(kind='t2h', index=15, repeat=1), ScheduleStep(kind='poll', index=13, repeat=1))), shapes=(IoShape(op='write', qpair=6, namespace=0, blocks=31, start=10091, layout='in_capsule', cuts=(), gap=48), IoShape(op='write', qpair=4, namespace=3, blocks=29, start=105, layout='in_capsule', cuts=(), gap=48)))
state.teardown()
