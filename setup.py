import os
import os.path as osp
import shutil

from setuptools import find_packages, setup


def readme():
    with open('README.md', encoding='utf-8') as f:
        return f.read()


def get_version():
    scope = {}
    with open(osp.join('mmrm', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def parse_requirements(fname):
    reqs = []
    with open(fname) as f:
        for line in f:
            line = line.split('#')[0].strip()
            if line and not line.startswith('-r'):
                reqs.append(line)
    return reqs


def add_mim_extension():
    """Expose configs/ and tools/ inside the package as ``mmrm/.mim``, the way OpenMMLab
    packages ship them for ``mim`` (symlinks in develop mode, copies otherwise)."""
    import sys
    if 'develop' in sys.argv or 'editable_wheel' in sys.argv:
        mode = 'symlink'
    elif any(a in sys.argv for a in ('sdist', 'bdist_wheel', 'install')):
        mode = 'copy'
    else:
        return
    mim_path = osp.join(osp.dirname(osp.abspath(__file__)), 'mmrm', '.mim')
    os.makedirs(mim_path, exist_ok=True)
    for name in ('configs', 'tools', 'requirements', 'README.md'):
        src = osp.join(osp.dirname(osp.abspath(__file__)), name)
        dst = osp.join(mim_path, name)
        if not osp.exists(src):
            continue
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim_path), dst)
        else:
            (shutil.copytree if osp.isdir(src) else shutil.copyfile)(src, dst)


if __name__ == '__main__':
    add_mim_extension()
    setup(
        name='mmrm',
        version=get_version(),
        description='RecursiveMix (mixed learning with history) for the OpenMMLab 2.0 stack',
        long_description=readme(),
        long_description_content_type='text/markdown',
        license='Apache License 2.0',
        packages=find_packages(exclude=('configs', 'tools', 'tests', 'scripts')),
        include_package_data=True,
        package_data={'mmrm': ['.mim/**/*']},
        python_requires='>=3.8',
        install_requires=parse_requirements('requirements/runtime.txt'),
        # classification needs runtime.txt only; detection / segmentation come with the
        # 'downstream' extra and need mmcv built with its compiled ops (install_env.sh full)
        extras_require={
            'downstream': parse_requirements('requirements/downstream.txt'),
            'tests': parse_requirements('requirements/tests.txt'),
        },
        zip_safe=False,
    )
