"""A local rehearsal of a Dataflow Runner v2 launch of the scoring job (`make rehearse-dataflow`).

rehearse.py says what it runs and checks; boot.py is the stand-in for the SDK container's boot,
job_service.py Beam's portable job service on loopback, data.py the inputs with their bad records,
launch.py the launches, checks.py the read-back, services.py the processes and their clean-up.
"""
