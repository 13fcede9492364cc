"""Lay out Fashion-MNIST for mmpretrain's ``FashionMNIST`` dataset, offline.

Source, in order: ``--src`` if given; Debian's ``dataset-fashion-mnist`` package
(``/usr/share/datasets/fashion-mnist``), installed with apt-get when missing and this process may
(root, apt available, ``--no-apt`` not given). The four IDX files are decompressed into ``--out``
with the names mmpretrain reads. Where the internet is reachable, mmpretrain's own download
(``download=True`` in the dataset config) serves as well.

Example::

    python tools/dataset_converters/prepare_fashion_mnist.py --out data/fashion_mnist
"""
import argparse
import gzip
import os
import os.path as osp
import shutil
import subprocess
import sys

DEBIAN_DIR = '/usr/share/datasets/fashion-mnist'
FILES = ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte',
         't10k-labels-idx1-ubyte')
# (magic number, item count) of each IDX file, to refuse a truncated or foreign file
EXPECTED = {FILES[0]: (2051, 60000), FILES[1]: (2049, 60000), FILES[2]: (2051, 10000),
            FILES[3]: (2049, 10000)}


def idx_header(path):
    with open(path, 'rb') as f:
        head = f.read(8)
    return int.from_bytes(head[:4], 'big'), int.from_bytes(head[4:8], 'big')


def complete(folder):
    return all(osp.isfile(osp.join(folder, n)) and idx_header(osp.join(folder, n)) == EXPECTED[n]
               for n in FILES)


def find_source(src, allow_apt):
    for folder in [src] if src else [DEBIAN_DIR]:
        if folder and all(osp.isfile(osp.join(folder, n + '.gz')) or
                          osp.isfile(osp.join(folder, n)) for n in FILES):
            return folder
    if src:
        sys.exit(f'prepare_fashion_mnist: {src} does not hold the four Fashion-MNIST IDX files '
                 f'({", ".join(FILES)}, optionally .gz)')
    if allow_apt and shutil.which('apt-get') and os.geteuid() == 0:
        print('[data] installing Debian package dataset-fashion-mnist (MIT licence) ...',
              flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
        ok = subprocess.call(['apt-get', 'install', '-y', '-q', 'dataset-fashion-mnist'],
                             env=env) == 0
        if not ok:  # stale package lists on a fresh machine
            subprocess.call(['apt-get', 'update', '-q'], env=env)
            ok = subprocess.call(['apt-get', 'install', '-y', '-q', 'dataset-fashion-mnist'],
                                 env=env) == 0
        if ok and osp.isdir(DEBIAN_DIR):
            return DEBIAN_DIR
    sys.exit('prepare_fashion_mnist: Fashion-MNIST not found. Install it with\n'
             '    sudo apt-get install dataset-fashion-mnist   (Debian/Ubuntu)\n'
             'or download the four IDX .gz files from '
             'https://github.com/zalandoresearch/fashion-mnist and pass --src FOLDER.')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default='data/fashion_mnist', help='output folder')
    parser.add_argument('--src', help='folder with the IDX files (.gz or plain)')
    parser.add_argument('--no-apt', action='store_true', help='never call apt-get')
    args = parser.parse_args()
    if complete(args.out):
        print(f'[data] Fashion-MNIST ready in {args.out}')
        return
    src = find_source(args.src, not args.no_apt)
    os.makedirs(args.out, exist_ok=True)
    for name in FILES:
        dst = osp.join(args.out, name)
        if osp.isfile(osp.join(src, name)):
            shutil.copyfile(osp.join(src, name), dst)
        else:
            with gzip.open(osp.join(src, name + '.gz'), 'rb') as fin, open(dst, 'wb') as fout:
                shutil.copyfileobj(fin, fout)
    if not complete(args.out):
        sys.exit(f'prepare_fashion_mnist: the files copied from {src} are not Fashion-MNIST '
                 f'(unexpected IDX headers)')
    print(f'[data] Fashion-MNIST (60000 train / 10000 test, 28x28, 10 classes) written to '
          f'{args.out} from {src}')


if __name__ == '__main__':
    main()
