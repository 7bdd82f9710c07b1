from conftest import assert_same_as_sequential


def test_chain_inout_and_multiple_returns(program):
    path = program("""
        import json
        import numpy as np
        from pycompss.api.task import task
        from pycompss.api.parameter import INOUT
        from pycompss.api.api import compss_wait_on

        @task(returns=1)
        def inc(x):
            return x + 1

        @task(c=INOUT)
        def accumulate(a, c):
            c += a

        @task(returns=2)
        def pair(x):
            return x, x * 2

        if __name__ == "__main__":
            v = 0
            for _ in range(20):
                v = inc(v)
            c = np.zeros(3)
            for i in range(5):
                accumulate(np.full(3, i), c)
            a, b = pair(7)
            print("RESULT", json.dumps([compss_wait_on(v), compss_wait_on(c).tolist(),
                                        compss_wait_on(a), compss_wait_on(b)]))
    """)
    run = assert_same_as_sequential(path)
    assert run.result == [20, [10.0, 10.0, 10.0], 7, 14]


def test_arrays_given_to_user_code_are_writable(program):
    """Large arrays arrive in read-only network buffers; user code must still be able to
    modify what it receives (an IN argument inside a task, a result after wait_on)."""
    path = program("""
        import json
        import numpy as np
        from pycompss.api.task import task
        from pycompss.api.api import compss_wait_on

        @task(returns=1)
        def make(n):
            return np.ones(n)

        @task(returns=1)
        def local_change(a):
            a[0] = 100.0
            return float(a.sum())

        if __name__ == "__main__":
            a = make(100_000)
            total = local_change(a)
            b = compss_wait_on(a)
            b[1] = 5.0
            print("RESULT", json.dumps([compss_wait_on(total), b[:3].tolist()]))
    """)
    run = assert_same_as_sequential(path)
    assert run.result == [100099.0, [1.0, 5.0, 1.0]]
