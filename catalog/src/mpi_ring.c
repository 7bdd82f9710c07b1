/* A token travels around the ring of MPI processes `rounds` times; each process adds its rank
 * + 1 to it on every pass. Rank 0 writes "<processes> <token>" to the result file, so the
 * caller can check token == rounds * processes * (processes + 1) / 2.
 *
 *     mpirun -n P mpi_ring ROUNDS RESULT_FILE
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    int rank, size;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc != 3) {
        if (rank == 0) fprintf(stderr, "usage: mpi_ring ROUNDS RESULT_FILE\n");
        MPI_Finalize();
        return 2;
    }
    long rounds = atol(argv[1]);
    long token = 0;
    int next = (rank + 1) % size, previous = (rank + size - 1) % size;
    for (long round = 0; round < rounds; round++) {
        if (rank == 0) {
            token += 1;
            if (size > 1) {
                MPI_Send(&token, 1, MPI_LONG, next, 0, MPI_COMM_WORLD);
                MPI_Recv(&token, 1, MPI_LONG, previous, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            }
        } else {
            MPI_Recv(&token, 1, MPI_LONG, previous, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            token += rank + 1;
            MPI_Send(&token, 1, MPI_LONG, next, 0, MPI_COMM_WORLD);
        }
    }
    int status = 0;
    if (rank == 0) {
        FILE *out = fopen(argv[2], "w");
        if (out == NULL) {
            perror(argv[2]);
            status = 1;
        } else {
            fprintf(out, "%d %ld\n", size, token);
            fclose(out);
        }
        printf("mpi_ring: %d processes, %ld rounds, token %ld\n", size, rounds, token);
    }
    MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Finalize();
    return status;
}
